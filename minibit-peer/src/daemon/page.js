// The daemon page's script (after /common.js: the token, api()): with the
// API token from the login URL the page adds (a URL, a
// magnet link, a .torrent chosen or dropped on the page), pauses,
// resumes and removes torrents, changes file selections, subscribes to
// trackers and unsubscribes. The list is redrawn from every `progress`
// server-sent event (once a second); the subscriptions after every change
// and every 5 s.
"use strict";

let selected = null;
// The torrent whose files the table shows (its check boxes are kept
// while the user changes them; only the "have" column is refreshed).
let filesShown = null;
// The torrent whose limits the form shows (kept while the user edits).
let limitsShown = null;

function say(text) {
  document.getElementById("status").textContent = text;
}

function showLogin() {
  const loggedIn = token() !== null;
  document.getElementById("login").hidden = loggedIn;
  document.getElementById("add-url").hidden = !loggedIn;
  document.getElementById("add-file").hidden = !loggedIn;
  document.getElementById("save-files").hidden = !loggedIn;
  document.getElementById("limits").hidden = !loggedIn;
  document.getElementById("subscribe").hidden = !loggedIn;
  for (const button of document.querySelectorAll("#torrents button, #subscriptions button")) {
    button.hidden = !loggedIn;
  }
}

function eta(seconds) {
  if (seconds === null) {
    return "";
  }
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
}

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text;
  return td;
}

function button(td, label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = label;
  b.addEventListener("click", async () => {
    try {
      await action();
    } catch (error) {
      say(label + " failed: " + error.message);
    }
  });
  td.append(b, " ");
}

function draw(list) {
  const body = document.querySelector("#torrents tbody");
  body.replaceChildren();
  document.getElementById("empty").hidden = list.length > 0;
  document.getElementById("torrents").hidden = list.length === 0;
  for (const t of list) {
    const row = body.insertRow();
    row.dataset.infoHash = t.info_hash;
    const name = document.createElement("a");
    name.href = "#";
    name.textContent = t.name;
    name.className = "name";
    name.addEventListener("click", (event) => {
      event.preventDefault();
      selected = t.info_hash;
      showDetail();
    });
    row.insertCell().append(name);
    cell(row, t.error ? "error: " + t.error : t.state).className = "state";
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = t.progress;
    const td = row.insertCell();
    td.className = "progress";
    td.append(bar, " " + (t.progress * 100).toFixed(1) + " %");
    bytesCell(row, t.download_rate, true);
    bytesCell(row, t.upload_rate, true);
    cell(row, t.peers);
    cell(row, eta(t.eta));
    bytesCell(row, t.size).className = "size";
    const actions = row.insertCell();
    const path = "/api/torrents/" + t.info_hash;
    if (t.state === "paused") {
      button(actions, "resume", () => api("POST", path + "/resume"));
    } else {
      button(actions, "pause", () => api("POST", path + "/pause"));
    }
    button(actions, "remove", async () => {
      const data = confirm("Also delete the downloaded files of " + t.name + "?");
      await api("DELETE", path + (data ? "?delete_data=true" : ""));
      if (selected === t.info_hash) {
        selected = null;
        document.getElementById("detail").hidden = true;
      }
    });
  }
  showLogin();
}

// Adds the .torrent `file` (from the form or dropped on the page); says
// how it went and whether it was added.
async function addTorrentFile(file) {
  try {
    const added = await api("POST", "/api/torrents", file, "application/x-bittorrent");
    say("added " + added.info_hash);
    return true;
  } catch (error) {
    say("not added: " + error.message);
    return false;
  }
}

// The subscriptions table: GET /api/subscriptions, an unsubscribe button
// per row.
async function showSubscriptions() {
  const response = await fetch("/api/subscriptions");
  if (!response.ok) return;
  const list = await response.json();
  const body = document.querySelector("#subscriptions tbody");
  body.replaceChildren();
  document.getElementById("no-subscriptions").hidden = list.length > 0;
  document.getElementById("subscriptions").hidden = list.length === 0;
  for (const s of list) {
    const row = body.insertRow();
    cell(row, s.tracker).className = "tracker";
    cell(row, s.glob ?? "every publication").className = "glob";
    const query = { tracker: s.tracker };
    if (s.glob !== null) {
      query.glob = s.glob;
    }
    button(row.insertCell(), "unsubscribe", async () => {
      await api("DELETE", "/api/subscriptions?" + new URLSearchParams(query));
      say("unsubscribed from " + s.tracker + (s.glob === null ? "" : "#" + s.glob));
      showSubscriptions();
    });
  }
  showLogin();
}

// The DHT line: GET /api/dht (nodes in the routing table, lookups in
// flight, peers found over every torrent).
async function showDht() {
  const response = await fetch("/api/dht");
  if (!response.ok) return;
  const d = await response.json();
  const found = d.torrents.reduce((sum, t) => sum + t.peers_found, 0);
  document.getElementById("dht").textContent = !d.enabled ? "DHT: off"
    : !d.node ? "DHT: starting"
    : "DHT node " + d.node + ": " + d.routing_table_nodes + " nodes in the routing table, "
      + d.lookups_in_flight + " lookups in flight, " + found + " peers found for "
      + d.torrents.length + " torrents";
}

// Paints one bar per entry of `colours` across canvas `id`.
function paint(id, colours) {
  const canvas = document.getElementById(id);
  const context = canvas.getContext("2d");
  const width = canvas.width / Math.max(colours.length, 1);
  context.clearRect(0, 0, canvas.width, canvas.height);
  colours.forEach((colour, i) => {
    context.fillStyle = colour;
    context.fillRect(i * width, 0, Math.max(width, 1), canvas.height);
  });
}

function drawPeers(peers) {
  const body = document.querySelector("#peers tbody");
  body.replaceChildren();
  for (const p of peers) {
    const row = body.insertRow();
    cell(row, p.address).className = "address";
    cell(row, p.client === null ? "" : p.client).className = "client";
    cell(row, p.flags).className = "flags";
    cell(row, (p.progress * 100).toFixed(1) + " %");
    bytesCell(row, p.download_rate, true);
    bytesCell(row, p.upload_rate, true);
  }
}

function when(seconds) {
  return seconds === null ? "" : new Date(seconds * 1000).toLocaleTimeString();
}

function drawTrackers(trackers) {
  const body = document.querySelector("#trackers tbody");
  body.replaceChildren();
  for (const t of trackers) {
    const row = body.insertRow();
    cell(row, t.tier);
    cell(row, t.url).className = "url";
    cell(row, when(t.last_announce));
    cell(row, t.seeders ?? "").className = "seeders";
    cell(row, t.leechers ?? "");
    cell(row, t.peers ?? "");
    cell(row, when(t.next_announce));
    cell(row, t.error ?? "").className = "error";
  }
}

async function showDetail() {
  if (selected === null) {
    return;
  }
  const response = await fetch("/api/torrents/" + selected);
  if (!response.ok) {
    return;
  }
  const t = await response.json();
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-name").textContent = t.name;
  const have = [...t.pieces].filter((c) => c === "1").length;
  const busy = [...t.pieces].filter((c) => c === "2").length;
  document.getElementById("detail-pieces").textContent =
    have + " of " + t.pieces.length + " pieces, " + busy + " downloading";
  const colours = { 1: "#236", 2: "#e80", 0: "#ddd" };
  paint("piece-map", [...t.pieces].map((c) => colours[c]));
  const most = Math.max(1, ...t.availability);
  paint("availability", t.availability.map((n) => "rgba(0, 110, 60, " + (n === 0 ? 0.05 : 0.2 + 0.8 * n / most) + ")"));
  document.getElementById("detail-copies").textContent =
    "distributed copies " + t.distributed_copies.toFixed(3);
  drawPeers(t.peer_list);
  drawTrackers(t.trackers);
  const limits = document.getElementById("limits");
  if (limitsShown !== t.info_hash) {
    limitsShown = t.info_hash;
    limits.elements.upload_limit.value = t.upload_limit;
    limits.elements.download_limit.value = t.download_limit;
  }
  const body = document.querySelector("#files tbody");
  if (filesShown === t.info_hash) {
    t.files.forEach((f, i) => {
      showBytes(body.rows[i].cells[3], f.have);
    });
    return;
  }
  filesShown = t.info_hash;
  body.replaceChildren();
  for (const f of t.files) {
    const row = body.insertRow();
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = f.priority !== "skip";
    box.dataset.priority = f.priority;
    row.insertCell().append(box);
    cell(row, f.path);
    bytesCell(row, f.size);
    bytesCell(row, f.have);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromUrl();
  showLogin();
  const byUrl = document.getElementById("add-url");
  byUrl.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const added = await api("POST", "/api/torrents", JSON.stringify({ uri: byUrl.elements.uri.value }), "application/json");
      say("added " + added.info_hash);
      byUrl.reset();
    } catch (error) {
      say("not added: " + error.message);
    }
  });
  const byFile = document.getElementById("add-file");
  byFile.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await addTorrentFile(byFile.elements.file.files[0])) {
      byFile.reset();
    }
  });
  // A .torrent dropped anywhere on the page is added the same way.
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    if (token() === null) {
      say("log in (the daemon's login URL) to add torrents");
      return;
    }
    for (const file of event.dataTransfer.files) {
      addTorrentFile(file);
    }
  });
  document.getElementById("logout").addEventListener("click", () => {
    forgetToken();
    showLogin();
  });
  document.getElementById("save-files").addEventListener("click", async () => {
    const priorities = [...document.querySelectorAll("#files tbody input")].map((box) =>
      box.checked ? (box.dataset.priority === "skip" ? "normal" : box.dataset.priority) : "skip");
    try {
      await api("PATCH", "/api/torrents/" + selected, JSON.stringify({ priorities }), "application/json");
      say("file selection applied");
      filesShown = null;
    } catch (error) {
      say("file selection not applied: " + error.message);
    }
  });
  const limits = document.getElementById("limits");
  limits.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      upload_limit: Number(limits.elements.upload_limit.value),
      download_limit: Number(limits.elements.download_limit.value),
    };
    try {
      await api("PATCH", "/api/torrents/" + selected, JSON.stringify(body), "application/json");
      say("limits set");
    } catch (error) {
      say("limits not set: " + error.message);
    }
  });
  const subscribe = document.getElementById("subscribe");
  subscribe.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { tracker: subscribe.elements.tracker.value };
    if (subscribe.elements.glob.value !== "") {
      body.glob = subscribe.elements.glob.value;
    }
    try {
      await api("POST", "/api/subscriptions", JSON.stringify(body), "application/json");
      say("subscribed to " + body.tracker + (body.glob === undefined ? "" : "#" + body.glob));
      subscribe.reset();
      showSubscriptions();
    } catch (error) {
      say("not subscribed: " + error.message);
    }
  });
  fetch("/api/torrents").then((r) => r.json()).then(draw);
  showDht();
  showSubscriptions();
  setInterval(() => {
    showDht();
    showSubscriptions();
  }, 5000);
  const events = new EventSource("/api/events");
  events.addEventListener("progress", (event) => {
    draw(JSON.parse(event.data));
    showDetail();
  });
});
