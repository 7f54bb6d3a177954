// What the daemon's and the tracker's pages share (served at /common.js,
// before each page's own script): the API token, taken from the login URL
// (#token=...) and kept in localStorage under the key the page names
// (<html data-token-key="...">), and calls of the JSON API with it. Each
// page defines showLogin(), which shows or hides what needs the token.
"use strict";

const TOKEN_KEY = document.documentElement.dataset.tokenKey;

function token() {
  return localStorage.getItem(TOKEN_KEY);
}

function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

function takeTokenFromUrl() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

// `method url` with the token, `body` sent as `type` (if given); the JSON
// answer (null for 204). A refusal throws "STATUS: the API's message"; a
// 401 also forgets the token.
async function api(method, url, body, type) {
  const headers = { Authorization: "Bearer " + token() };
  if (type) {
    headers["Content-Type"] = type;
  }
  const response = await fetch(url, { method, headers, body });
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).error;
    } catch (_) {}
    if (response.status === 401) {
      forgetToken();
      showLogin();
    }
    throw new Error(response.status + ": " + message);
  }
  return response.status === 204 ? null : response.json();
}

// The login URL pasted into a tab that already shows the page only
// changes the fragment: no reload, so take the token from here too.
window.addEventListener("hashchange", () => {
  takeTokenFromUrl();
  showLogin();
});
