"""Presence rules of one user: tabs, grace, away, idle — and which transitions get announced."""

from __future__ import annotations

from relay_presence.domain import AWAY, OFFLINE, ONLINE, Change, Socket, UserPresence, stats

USER = {"userId": "u1", "username": "ana", "roles": ["admin"]}


def sock(sid: str, replica: str = "gw-a/1", at: float = 0.0) -> Socket:
    return Socket(sid, replica, "/", at)


def test_first_socket_announces_online_and_more_tabs_announce_nothing():
    u = UserPresence("acme", "u1")
    assert u.connect(sock("s1"), USER, 10.0) == Change(OFFLINE, ONLINE)
    assert u.connect(sock("s2", "gw-b/1"), USER, 11.0) is None
    assert u.connect(sock("s3", "gw-b/1"), USER, 12.0) is None
    assert u.status == ONLINE and len(u.sockets) == 3 and u.connected_since == 10.0


def test_user_stays_online_until_the_last_tab_closes_then_goes_offline_after_grace():
    u = UserPresence("acme", "u1")
    for i in range(3):
        u.connect(sock(f"s{i}"), USER, 1.0)
    u.disconnect("s0", 2.0, grace=3.0)
    u.disconnect("s1", 2.0, grace=3.0)
    assert u.settle(100.0) is None and u.status == ONLINE
    u.disconnect("s2", 5.0, grace=3.0)
    assert u.status == ONLINE and u.offline_at == 8.0
    assert u.settle(7.9) is None
    assert u.settle(8.0) == Change(ONLINE, OFFLINE)
    assert u.status == OFFLINE and u.last_seen == 5.0 and u.connected_since is None
    assert u.settle(9.0) is None  # announced once


def test_reconnect_within_grace_is_not_announced():
    u = UserPresence("acme", "u1")
    u.connect(sock("s1"), USER, 1.0)
    u.disconnect("s1", 2.0, grace=3.0)
    assert u.connect(sock("s2", "gw-b/2"), USER, 3.0) is None
    assert u.offline_at is None
    assert u.settle(10.0) is None and u.status == ONLINE


def test_unknown_socket_disconnect_changes_nothing():
    u = UserPresence("acme", "u1")
    u.connect(sock("s1"), USER, 1.0)
    assert u.disconnect("nope", 2.0, grace=0) is None
    assert u.settle(5.0) is None and u.status == ONLINE


def test_zero_grace_settles_immediately():
    u = UserPresence("acme", "u1")
    u.connect(sock("s1"), USER, 1.0)
    u.disconnect("s1", 2.0, grace=0.0)
    assert u.settle(2.0) == Change(ONLINE, OFFLINE)


def test_chosen_away_survives_activity_until_set_online():
    u = UserPresence("acme", "u1")
    u.connect(sock("s1"), USER, 1.0)
    assert u.set_status(AWAY, 2.0) == Change(ONLINE, AWAY)
    assert u.set_status(AWAY, 2.5) is None
    assert u.activity(3.0) is None and u.status == AWAY
    assert u.set_status(ONLINE, 4.0) == Change(AWAY, ONLINE)


def test_idle_goes_away_and_activity_brings_back_online():
    u = UserPresence("acme", "u1")
    u.connect(sock("s1"), USER, 0.0)
    assert u.idle(299.0, idle_seconds=300) is None
    assert u.idle(300.0, idle_seconds=300) == Change(ONLINE, AWAY)
    assert u.idle(400.0, idle_seconds=300) is None
    assert u.activity(401.0) == Change(AWAY, ONLINE)


def test_offline_user_cannot_set_status_and_away_user_goes_offline_from_away():
    u = UserPresence("acme", "u1")
    assert u.set_status(AWAY, 1.0) is None and u.status == OFFLINE
    u.connect(sock("s1"), USER, 1.0)
    u.set_status(AWAY, 2.0)
    u.disconnect("s1", 3.0, grace=0)
    assert u.settle(3.0) == Change(AWAY, OFFLINE)
    # coming back is a fresh online, not a sticky away
    assert u.connect(sock("s2"), USER, 4.0) == Change(OFFLINE, ONLINE) and not u.manual_away


def test_document_round_trip_keeps_everything():
    u = UserPresence("acme", "u1")
    u.connect(sock("s1", at=5.0), USER, 5.0)
    u.add_conversation("s1", "c1", True)
    again = UserPresence.from_doc(u.to_doc())
    assert again == u


def test_conversation_tracking_per_socket():
    u = UserPresence("acme", "u1")
    u.connect(sock("s1"), USER, 1.0)
    assert u.add_conversation("s1", "c1", True) is True
    assert u.add_conversation("s1", "c1", True) is False
    assert u.add_conversation("s9", "c1", True) is False
    assert u.add_conversation("s1", "c1", False) is True


def test_stats_count_users_by_role_and_connection_time():
    a = UserPresence("acme", "a", user={"roles": ["admin"], "username": "a"})
    a.connect(sock("s1"), {}, 10.0)
    b = UserPresence("acme", "b", user={"roles": ["admin", "agent"]})
    b.connect(sock("s2"), {}, 20.0)
    b.connect(sock("s3"), {}, 21.0)
    out = stats([a, b], 30.0)
    assert out["totalUsers"] == 2 and out["totalSockets"] == 3
    assert out["usersByRole"] == {"admin": 2, "agent": 1}
    assert [(c["userId"], c["durationSeconds"]) for c in out["connectionTimes"]] == [("a", 20.0), ("b", 10.0)]
