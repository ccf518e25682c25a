using Logwell.Cli;

return await LogwellCommand.RunAsync(args).ConfigureAwait(false);
