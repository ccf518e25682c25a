// Sends three log lines to Logwell's Loki endpoint with winston-loki and exits once they are acknowledged.
// usage: node loki-push.js BASE_URL json|protobuf
const winston = require('winston');
const LokiTransport = require('winston-loki');

const [baseUrl, mode] = process.argv.slice(2);
const transport = new LokiTransport({
  host: baseUrl,
  json: mode === 'json',
  labels: { app: 'shop', mode },
  batching: true,
  interval: 0.2,
  onConnectionError: (error) => { console.error(`push failed: ${error}`); process.exitCode = 1; },
});
const logger = winston.createLogger({ level: 'debug', transports: [transport] });

logger.info(`order 1 paid (${mode})`);
logger.error(`payment 2 declined (${mode})`, { order: 2, reason: 'card' });
logger.debug(`cache warm (${mode})`);

// close() sends what is still batched and resolves once Loki (here Logwell) has answered.
transport.close().then(() => process.exit(process.exitCode ?? 0));
