// The tracker page's script (after /common.js: the token, api()): with
// the API token from the login URL the page publishes files
// (streamed as the request body) and removes entries. Every catalogue
// event reloads the page. Every 2 s each row's seeders, leechers,
// completed downloads and announces per minute are refreshed from
// /torrents (those of the other swarms from /swarms), and its seeder
// upload rate and availability heat map from /api/torrents/{info_hash}.
"use strict";

function showLogin() {
  const loggedIn = token() !== null;
  document.getElementById("login").hidden = loggedIn;
  document.getElementById("publish").hidden = !loggedIn;
  for (const button of document.querySelectorAll("button.remove")) {
    button.hidden = !loggedIn;
  }
}

// Paints `availability` (copies of each piece among the seeder's peers)
// across `canvas`: white for none, darker green for more; its title says
// the range.
function paintAvailability(canvas, availability) {
  const context = canvas.getContext("2d");
  const most = Math.max(0, ...availability);
  const width = canvas.width / Math.max(availability.length, 1);
  context.clearRect(0, 0, canvas.width, canvas.height);
  availability.forEach((copies, i) => {
    context.fillStyle = copies === 0 ? "#f4f4f4" : "rgba(0, 110, 60, " + (0.25 + 0.75 * copies / most) + ")";
    context.fillRect(i * width, 0, Math.max(width, 1), canvas.height);
  });
  const least = availability.length ? Math.min(...availability) : 0;
  canvas.title = availability.length + " pieces, " + least + " to " + most + " copies among the seeder's peers";
}

// Writes the counts of each swarm of `listing` (/torrents or /swarms)
// into its row of `table`.
function fillCounts(table, listing) {
  for (const swarm of listing) {
    const row = document.querySelector(table + " tr[data-info-hash='" + swarm.info_hash + "']");
    if (!row) {
      continue;
    }
    row.querySelector("td.seeders").textContent = swarm.seeders;
    row.querySelector("td.leechers").textContent = swarm.leechers;
    row.querySelector("td.completed").textContent = swarm.completed;
    const announces = row.querySelector("td.announces");
    if (announces) {
      announces.textContent = swarm.announces_per_minute.toFixed(1);
    }
  }
}

async function refreshCounts() {
  const torrents = await fetch("/torrents" + location.search);
  if (torrents.ok) {
    fillCounts("#torrents", await torrents.json());
  }
  if (document.getElementById("swarms")) {
    const swarms = await fetch("/swarms");
    if (swarms.ok) {
      fillCounts("#swarms", await swarms.json());
    }
  }
}

async function refreshSeeder() {
  for (const cell of document.querySelectorAll("td.upload")) {
    const infoHash = cell.dataset.infoHash;
    const response = await fetch("/api/torrents/" + infoHash);
    const canvas = document.querySelector("canvas.availability[data-info-hash='" + infoHash + "']");
    if (!response.ok) {
      cell.textContent = "not seeded";
      continue;
    }
    const status = await response.json();
    showBytes(cell, status.upload_rate, true);
    cell.textContent += "\u00a0(" + status.peers + (status.peers === 1 ? "\u00a0peer)" : "\u00a0peers)");
    paintAvailability(canvas, status.availability);
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
    forgetToken();
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
  const refresh = () => {
    refreshCounts();
    refreshSeeder();
  };
  refresh();
  setInterval(refresh, 2000);
  const events = new EventSource("/api/catalogue/events");
  for (const kind of ["publish", "remove", "lagged"]) {
    events.addEventListener(kind, () => location.reload());
  }
});
