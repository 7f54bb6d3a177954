#!/usr/bin/python3
"""Headless libtorrent-rasterbar client for the interop tests.

Seeds or downloads one .torrent (or, downloading, a magnet link) on 127.0.0.1 (or `--ip`) with the settings that make
libtorrent behave on loopback, and reports on stdout, one line each:

    listening PORT
    progress PPM STATE PEERS         (state: checking, downloading, seeding, ...)
    complete                         (every piece verified)
    peer PEER_ID_HEX down=BLOCKS up=BLOCKS
        blocks (of up to 16 KiB) received from / sent to that peer id so
        far, over all its connections (printed whenever they change)
    state PEER_ID_HEX interested=0|1 choked=0|1 seed=0|1
        whether we are interested in that peer, whether it chokes us and
        whether it is a seed (printed whenever that changes)
    error TEXT                       (tracker, file or peer errors)
    dht nodes N                      (with --dht-bootstrap: nodes in the DHT
                                     routing table, whenever that changes)
    dht peers N                      (with --dht-bootstrap: a DHT node's
                                     get_peers answer listed N peers)

`--download` exits 0 after `complete` unless `--keep-seeding`; a seeder
runs until it is killed. `--download-limit` caps the download rate.

`--dht-bootstrap HOST:PORT,...` turns the Mainline DHT (BEP 5) on, on the
listen port, bootstrapped from those nodes only, with the checks off that
refuse many nodes on one /24 network (every test node is on 10.77.0.0/16)
or node ids not derived from a public address (BEP 42); announces and
lookups then run as libtorrent does them on the internet.
"""

import argparse
import sys
import time

import libtorrent as lt


def settings(ip, port, download_limit, dht_bootstrap):
    dht = {}
    if dht_bootstrap:
        dht = {
            "enable_dht": True,
            "dht_bootstrap_nodes": dht_bootstrap,
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_prefer_verified_node_ids": False,
            "dht_enforce_node_id": False,
        }
    return {
        "download_rate_limit": download_limit,
        "listen_interfaces": "%s:%d" % (ip, port),
        "outgoing_interfaces": ip,
        "listen_system_port_fallback": False,
        # Nothing but the tracker: no DHT, local peer discovery, port mapping.
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        # Every peer of the test shares 127.0.0.1.
        "allow_multiple_connections_per_ip": True,
        # Plain TCP: no uTP first, no encrypted attempt before plaintext.
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "out_enc_policy": int(lt.enc_policy.disabled),
        "in_enc_policy": int(lt.enc_policy.enabled),
        # Connect at once and re-announce as often as the tracker allows.
        "smooth_connects": False,
        "connection_speed": 100,
        "peer_connect_timeout": 5,
        "min_announce_interval": 2,
        "alert_mask": int(
            lt.alert.category_t.error_notification
            | lt.alert.category_t.status_notification
            | lt.alert.category_t.tracker_notification
            | lt.alert.category_t.block_progress_notification
            | lt.alert.category_t.upload_notification
            | lt.alert.category_t.dht_notification
            | lt.alert.category_t.stats_notification
        ),
        "alert_queue_size": 1000000,
        **dht,
    }


def say(*words):
    print(*words, flush=True)


def main():
    parser = argparse.ArgumentParser()
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent", help="a .torrent file")
    source.add_argument("--magnet", help="a magnet link (metadata fetched from peers, BEP 9)")
    parser.add_argument("--dir", required=True, help="save path (for a seeder: where the content is)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on and connect from")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--seed", action="store_true")
    mode.add_argument("--download", action="store_true")
    parser.add_argument("--keep-seeding", action="store_true", help="after completing a download, keep seeding")
    parser.add_argument("--download-limit", type=int, default=0, help="bytes/s, 0: unlimited")
    parser.add_argument("--dht-bootstrap", help="HOST:PORT,...: turn the DHT on, bootstrapped from these nodes")
    args = parser.parse_args()

    session = lt.session(settings(args.ip, args.port, args.download_limit, args.dht_bootstrap))
    if args.download_limit:
        # Loopback peers are in the unlimited local peer class: put every
        # address in the global class so the limit applies to them.
        everyone = lt.ip_filter()
        everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        session.set_peer_class_filter(everyone)
    say("listening", session.listen_port())
    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.dir
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = session.add_torrent(params)

    # peer id -> [blocks received from it, blocks sent to it]
    blocks = {}
    last_progress = None
    last_state = {}
    completed = False
    last_dht_nodes = None
    while True:
        changed = set()
        if args.dht_bootstrap:
            session.post_session_stats()
        for alert in session.pop_alerts():
            if isinstance(alert, lt.block_finished_alert):
                pid = alert.pid.to_bytes().hex()
                blocks.setdefault(pid, [0, 0])[0] += 1
                changed.add(pid)
            elif isinstance(alert, lt.block_uploaded_alert):
                pid = alert.pid.to_bytes().hex()
                blocks.setdefault(pid, [0, 0])[1] += 1
                changed.add(pid)
            elif isinstance(alert, lt.session_stats_alert):
                nodes = alert.values["dht.dht_nodes"]
                if nodes != last_dht_nodes:
                    last_dht_nodes = nodes
                    say("dht nodes", nodes)
            elif isinstance(alert, lt.dht_reply_alert):
                say("dht peers", alert.num_peers)
            elif alert.category() & lt.alert.category_t.error_notification:
                say("error", alert.message())
        for pid in sorted(changed):
            say("peer", pid, "down=%d" % blocks[pid][0], "up=%d" % blocks[pid][1])
        for peer in handle.get_peer_info():
            pid = peer.pid.to_bytes().hex()
            state = (
                int(bool(peer.flags & lt.peer_info.interesting)),
                int(bool(peer.flags & lt.peer_info.remote_choked)),
                int(bool(peer.flags & lt.peer_info.seed)),
            )
            if last_state.get(pid) != state:
                last_state[pid] = state
                say("state", pid, "interested=%d" % state[0], "choked=%d" % state[1], "seed=%d" % state[2])
        status = handle.status()
        line = (status.progress_ppm, str(status.state), status.num_peers)
        if line != last_progress:
            last_progress = line
            say("progress", *line)
        if not completed and status.is_seeding:
            completed = True
            say("complete")
            if args.download and not args.keep_seeding:
                return 0
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
