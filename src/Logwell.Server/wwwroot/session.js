// Who the pages work for: the answer of GET /api/v1/access/session (or of the sign-in). Pages show a control only
// when its action is held; the node checks every use anyway.

let current = null;

export function setSession(session) {
  current = session;
}

export const session = () => current;

/** Holds the action somewhere (an index set, a space, or the node). */
export const can = action => !!current && (current.unrestricted || current.actions.includes(action) || current.node_actions.includes(action));

/** Holds the action on this index set, as GET /api/v1/indexsets lists it. */
export const canOn = (set, action) => !!current && (current.unrestricted || (set?.actions ?? []).includes(action));
