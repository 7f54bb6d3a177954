// The tracker page's script: the API token from the login URL
// (#token=...) is kept in localStorage; with it the page publishes files
// (streamed as the request body) and removes entries. Every catalogue
// event reloads the page.
"use strict";

const KEY = "minibit-tracker-token";

function token() {
  return localStorage.getItem(KEY);
}

function takeTokenFromUrl() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    localStorage.setItem(KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { Authorization: "Bearer " + token() },
    body,
  });
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).error;
    } catch (_) {}
    if (response.status === 401) {
      localStorage.removeItem(KEY);
    }
    throw new Error(response.status + ": " + message);
  }
  return response.json();
}

function showLogin() {
  const loggedIn = token() !== null;
  document.getElementById("login").hidden = loggedIn;
  document.getElementById("publish").hidden = !loggedIn;
  for (const button of document.querySelectorAll("button.remove")) {
    button.hidden = !loggedIn;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromUrl();
  showLogin();
  const form = document.getElementById("publish");
  const status = document.getElementById("status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    status.textContent = "publishing " + file.name + "...";
    try {
      const published = await api("POST", "/api/publish?name=" + encodeURIComponent(file.name), file);
      status.textContent = "published " + published.name + " (" + published.info_hash + ")";
    } catch (error) {
      status.textContent = "not published: " + error.message;
      showLogin();
    }
  });
  document.getElementById("logout").addEventListener("click", () => {
    localStorage.removeItem(KEY);
    showLogin();
  });
  for (const button of document.querySelectorAll("button.remove")) {
    button.addEventListener("click", async () => {
      if (!confirm("Remove " + button.dataset.name + " from the catalogue (its data is kept)?")) {
        return;
      }
      try {
        await api("DELETE", "/api/torrents/" + button.dataset.infoHash);
      } catch (error) {
        alert("not removed: " + error.message);
        showLogin();
      }
    });
  }
  const events = new EventSource("/api/catalogue/events");
  for (const kind of ["publish", "remove", "lagged"]) {
    events.addEventListener(kind, () => location.reload());
  }
});
