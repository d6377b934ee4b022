// Sign-in at the server's OpenID Connect issuer (when /api/v1/info names one with a client id): the authorization
// code flow with PKCE, all in this page. "Sign in" goes to the issuer's authorization endpoint; the issuer sends
// the browser back to <origin>/ with a code, which is traded at its token endpoint for a token kept in
// sessionStorage (this tab only, gone when it closes) and sent as "Authorization: Bearer". Nothing is imported
// from the other modules: the caller hands over the page state whose key the token becomes.

const TOKEN = "soundgen.token", PENDING = "soundgen.signin";

export const storedToken = () => sessionStorage.getItem(TOKEN) || "";

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

// The claims of a JWT, unverified (the server verifies; the page only reads the nonce and a name to show).
function claims(jwt) {
  try { return JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))); } catch { return null; }
}

async function beginSignIn(oidc) {
  const verifier = random(48), state = random(24), nonce = random(24);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const redirect = location.origin + "/";  // one address to register at the issuer, whatever page signs in
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce, redirect, back: location.pathname }));
  const url = new URL(oidc.authorization_endpoint);
  for (const [k, v] of Object.entries({ response_type: "code", client_id: oidc.client_id, redirect_uri: redirect,
    scope: oidc.scopes, state, nonce, code_challenge: challenge, code_challenge_method: "S256" })) url.searchParams.set(k, v);
  location.assign(url.href);
}

// Back from the issuer (?code=...&state=... or ?error=...): check the state, trade the code, keep the token.
// Returns the page to go back to when it is another one, else null.
async function finishSignIn(oidc, pageState) {
  const params = new URLSearchParams(location.search);
  if (!params.has("state") || !(params.has("code") || params.has("error"))) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", location.pathname);  // the code leaves the address bar and the history
  if (!pending || params.get("state") !== pending.state) throw new Error("The sign-in answer does not belong to this tab's sign-in; sign in again.");
  if (params.has("error")) throw new Error("The sign-in was not completed: " + (params.get("error_description") || params.get("error")));
  let res;
  try {
    res = await fetch(oidc.token_endpoint, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", code: params.get("code"), redirect_uri: pending.redirect,
        client_id: oidc.client_id, code_verifier: pending.verifier }) });
  } catch { throw new Error("The sign-in service did not answer (" + new URL(oidc.token_endpoint).host + ")."); }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error("The sign-in service refused the code: " + (body.error_description || body.error || res.status));
  // The ID token names this page's client as its audience, which the server accepts; an access token only when it
  // is a JWT (some issuers hand out opaque ones).
  const token = body.id_token || (body.access_token && body.access_token.split(".").length === 3 ? body.access_token : "");
  if (!token) throw new Error("The sign-in service sent no token this server can check (no ID token, no JWT access token).");
  if (body.id_token && (claims(body.id_token) || {}).nonce !== pending.nonce) throw new Error("The sign-in answer was replayed (nonce); sign in again.");
  sessionStorage.setItem(TOKEN, token);
  pageState.key = token;
  return pending.back && pending.back !== location.pathname ? pending.back : null;
}

function signOut(pageState) {
  sessionStorage.removeItem(TOKEN);
  pageState.key = localStorage.getItem("soundgen.key") || "";
  location.reload();
}

// Adds "Sign in" / "Sign out" beside the key button and "Sign in" to the key dialog; completes a sign-in that
// comes back from the issuer. ``onError(message)`` shows what went wrong.
export async function setupSignIn(info, pageState, onError) {
  const oidc = info.oidc;
  if (!oidc || !oidc.client_id) return;
  const button = document.createElement("button");
  button.id = "signin-button"; button.className = "ghost small"; button.type = "button";
  document.getElementById("key-button").before(button);
  if (!oidc.authorization_endpoint || !oidc.token_endpoint) {
    button.textContent = "Sign in"; button.disabled = true;
    button.title = "Sign-in is unavailable: " + (oidc.problem || "the issuer names no authorization or token endpoint");
    return;
  }
  try {
    const back = await finishSignIn(oidc, pageState);
    if (back) { location.replace(back); await new Promise(() => {}); }  // the page that signed in opens instead
  } catch (e) { onError(e.message); }
  const token = storedToken();
  if (token && token === pageState.key) {
    const who = claims(token) || {};
    button.textContent = "Sign out";
    button.title = "Signed in as " + (who.preferred_username || who.email || who.name || who.sub || "you") + " at " + oidc.issuer;
    button.addEventListener("click", () => signOut(pageState));
  } else {
    button.textContent = "Sign in";
    button.title = "Sign in at " + oidc.issuer;
    button.addEventListener("click", () => beginSignIn(oidc).catch((e) => onError(e.message)));
  }
  const form = document.getElementById("key-form");  // the key dialog offers the sign-in too
  if (form && !document.getElementById("key-signin")) {
    const p = document.createElement("p");
    const go = document.createElement("button");
    go.id = "key-signin"; go.type = "button"; go.className = "primary"; go.textContent = "Sign in";
    go.addEventListener("click", () => beginSignIn(oidc).catch((e) => onError(e.message)));
    p.append(go, " at " + new URL(oidc.issuer).host + ".");
    const title = form.querySelector("h2");
    title.textContent = "Sign in, or use an API key";
    title.after(p);
  }
}
