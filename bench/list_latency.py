"""Seeds users and measures /admin/users latencies (see admin_list.sh)."""
import base64
import http.client
import re
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse

HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2VlZHNlZWRzZWVkc2VlZA$7b4gB0i1B2Vb7P0xWbq3m1U6o8k1Qv5o2k7n0m0cN5M"
BASE_CREATED = 1_600_000_000  # created_at = BASE_CREATED + i minutes


def sql(db, statement):
    kind, target = db.split(":", 1)
    if kind == "sqlite":
        conn = sqlite3.connect(target)
        rows = conn.execute(statement).fetchall()
        conn.commit()
        conn.close()
        return rows
    out = subprocess.run(["psql", "-q", "-At", "-F", "\t", "-d", target, "-c", statement],
                         check=True, capture_output=True, text=True).stdout
    return [tuple(line.split("\t")) for line in out.splitlines() if line]


def seed(db, n):
    kind = db.split(":", 1)[0]
    # user i: every 1000th an admin, every 100th disabled, every 3rd never logged in. The e-mail
    # skeleton is the address itself (plain ASCII; spares the start-up backfill a million rows).
    if kind == "sqlite":
        statement = f"""
        WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
        INSERT INTO users (username, email, display_name, password_hash, role, is_active, must_change_password,
                           created_at, updated_at, last_login_at, search_name, search_text, email_skeleton)
        SELECT printf('user%07d', i), printf('user%07d@example.com', i), printf('Person %d', i), '{HASH}',
               CASE WHEN i % 1000 = 0 THEN 'admin' ELSE 'user' END, i % 100 != 0, 0,
               datetime({BASE_CREATED} + i * 60, 'unixepoch'), datetime({BASE_CREATED} + i * 60, 'unixepoch'),
               CASE WHEN i % 3 = 0 THEN NULL ELSE datetime(1700000000 + (i * 7919) % 1000003 * 30, 'unixepoch') END,
               printf('person %d', i),
               printf('user%07d' || char(10) || 'user%07d@example.com' || char(10) || 'person %d', i, i, i),
               printf('user%07d@example.com', i)
        FROM seq"""
        sql(db, statement)
        seed_group(db, n, "datetime('now')")
        sql(db, "ANALYZE")
    else:
        statement = f"""
        INSERT INTO users (username, email, display_name, password_hash, role, is_active, must_change_password,
                           created_at, updated_at, last_login_at, search_name, search_text, email_skeleton)
        SELECT 'user' || lpad(i::text, 7, '0'), 'user' || lpad(i::text, 7, '0') || '@example.com', 'Person ' || i,
               '{HASH}', CASE WHEN i % 1000 = 0 THEN 'admin' ELSE 'user' END, i % 100 <> 0, false,
               to_timestamp({BASE_CREATED} + i * 60) AT TIME ZONE 'UTC', to_timestamp({BASE_CREATED} + i * 60) AT TIME ZONE 'UTC',
               CASE WHEN i % 3 = 0 THEN NULL ELSE to_timestamp(1700000000 + (i::bigint * 7919) % 1000003 * 30) AT TIME ZONE 'UTC' END,
               'person ' || i,
               'user' || lpad(i::text, 7, '0') || E'\n' || 'user' || lpad(i::text, 7, '0') || '@example.com' || E'\n' || 'person ' || i,
               'user' || lpad(i::text, 7, '0') || '@example.com'
        FROM generate_series(1, {n}) AS i"""
        sql(db, statement)
        seed_group(db, n, "now()")
        sql(db, "VACUUM ANALYZE users")
        sql(db, "VACUUM ANALYZE group_members")


def seed_group(db, n, now):
    # A group of every 10th user (100,000 of a million), and a small one of 10.
    sql(db, f"INSERT INTO user_groups (name, display_name, description, created_at) VALUES "
            f"('big', 'Every tenth user', '', {now}), ('small', 'Ten users', '', {now})")
    sql(db, f"INSERT INTO group_members (group_id, user_id, added_at) "
            f"SELECT g.id, u.id, {now} FROM users u, user_groups g WHERE g.name = 'big' AND u.id % 10 = 0")
    sql(db, f"INSERT INTO group_members (group_id, user_id, added_at) "
            f"SELECT g.id, u.id, {now} FROM users u, user_groups g WHERE g.name = 'small' AND u.id % {max(n // 10, 1)} = 0")


def cursor(raw):
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def micros(text):
    from datetime import datetime, timezone
    text = text.replace("T", " ")
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    return int(datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp() * 1_000_000)


def measure(db, n, url):
    host = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(host.hostname, host.port)

    def request(method, path, body=None, headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read().decode()

    response, html = request("GET", "/login")
    csrf_cookie = re.search(r"(portcullis-login=[^;]+)", response.getheader("Set-Cookie")).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    form = urllib.parse.urlencode({"username": "admin", "password": "violet tractor sings loudly", "csrf_token": token})
    response, _ = request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": csrf_cookie})
    session = re.search(r"(portcullis=[^;]+)", response.getheader("Set-Cookie")).group(1)

    deep = int(n * 0.9)
    (last_login_row,) = sql(db, f"SELECT last_login_at, id FROM users WHERE last_login_at IS NOT NULL "
                                f"ORDER BY last_login_at DESC, id DESC LIMIT 1 OFFSET {int(n * 0.6)}")
    created_row = sql(db, f"SELECT created_at, id FROM users WHERE username = 'user{n - deep:07d}'")[0]
    (big,) = sql(db, "SELECT id FROM user_groups WHERE name = 'big'")[0]
    scenarios = [
        ("first page, by username", "/admin/users"),
        ("first page, newest first", "/admin/users?sort=-created"),
        ("first page, recent logins first", "/admin/users?sort=-last_login"),
        ("search username 'user04242' (100 hits)", "/admin/users?q=user04242"),
        ("search email 'user0777777@example.com'", "/admin/users?q=user0777777%40example.com"),
        ("search name 'person 31337' (11 hits)", "/admin/users?q=person+31337"),
        ("search 'user042' (10,000 hits)", "/admin/users?q=user042"),
        ("filter: administrators (0.1 %)", "/admin/users?role=admin"),
        ("filter: disabled (1 %)", "/admin/users?status=disabled"),
        ("filter: active users, newest first", "/admin/users?role=user&status=active&sort=-created"),
        (f"deep page: by username, row {deep:,}", "/admin/users?sort=username&after=" + cursor(f"u\x1fuser{deep:07d}")),
        (f"deep page: newest first, row {deep:,}",
         "/admin/users?sort=-created&after=" + cursor(f"c\x1f{micros(created_row[0])}\x1f{created_row[1]}")),
        (f"deep page: by last login, row {int(n * 0.6):,} of those who logged in",
         "/admin/users?sort=-last_login&after=" + cursor(f"l\x1f{micros(last_login_row[0])}\x1f{last_login_row[1]}")),
        ("broad search 'user0' (1 in 10 users; worst case)", "/admin/users?q=user0"),
        ("substring '77777' (11 hits, inside the names)", "/admin/users?q=77777"),
        ("substring 'son 31337' (11 hits, inside the display name)", "/admin/users?q=son+31337"),
        ("substring '@example.com' (every user)", "/admin/users?q=%40example.com"),
        ("substring 'erson' (every user)", "/admin/users?q=erson"),
        ("substring '4242' (about 700 hits)", "/admin/users?q=4242"),
        ("substring 'nobody-here' (no hits)", "/admin/users?q=nobody-here"),
        ("admin overview /admin (counts all users)", "/admin"),
        ("group of 100,000: its member page", f"/admin/groups/{big}"),
        ("group of 100,000: member page 1,000 (keyset)", f"/admin/groups/{big}?after=user{n // 2:07d}"),
        ("group of 100,000: member search 'user04242'", f"/admin/groups/{big}?q=user04242"),
        ("group of 100,000: member search '77777' (substring)", f"/admin/groups/{big}?q=77777"),
        ("user list, group filter: 100,000 members", "/admin/users?group=big"),
        ("user list, group filter: 10 members", "/admin/users?group=small"),
        ("user list, group filter + search 'user04242'", "/admin/users?group=big&q=user04242"),
        ("groups list /admin/groups (with member counts)", "/admin/groups"),
    ]
    print()
    print(f"| {'request':<58} | {'p50 ms':>7} | {'p95 ms':>7} | rows |")
    print(f"|{'-' * 60}|{'-' * 9}|{'-' * 9}|------|")
    for name, path in scenarios:
        times = []
        rows = 0
        for attempt in range(45):
            started = time.perf_counter()
            response, html = request("GET", path, headers={"Cookie": session})
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise SystemExit(f"{name}: HTTP {response.status}")
            if attempt >= 5:
                times.append(elapsed)
            rows = html.count('data-label="Username"')
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        print(f"| {name:<58} | {statistics.median(times):7.1f} | {p95:7.1f} | {rows:4} |")


if __name__ == "__main__":
    command, db, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if command == "seed":
        seed(db, count)
    else:
        measure(db, count, sys.argv[4])
