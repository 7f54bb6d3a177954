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

// `n` bytes for people, in binary units as the command line prints them:
// "512 B", "30.80 MiB" (a no-break space before the unit: the pages'
// policy allows no inline style to keep a cell on one line).
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return i === 0 ? Math.round(n) + "\u00a0B" : n.toFixed(2) + "\u00a0" + units[i];
}

// Shows `n` bytes (per second with `perSecond`) in `element` for people;
// its title and data-bytes keep the exact figure.
function showBytes(element, n, perSecond) {
  const exact = Math.round(n);
  element.textContent = bytes(n) + (perSecond ? "/s" : "");
  element.title = exact + (perSecond ? " bytes/s" : " bytes");
  element.dataset.bytes = exact;
  return element;
}

// A new cell at the end of `row` showing `n` bytes, as showBytes.
function bytesCell(row, n, perSecond) {
  return showBytes(row.insertCell(), n, perSecond);
}

// The login URL pasted into a tab that already shows the page only
// changes the fragment: no reload, so take the token from here too.
window.addEventListener("hashchange", () => {
  takeTokenFromUrl();
  showLogin();
});
