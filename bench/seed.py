#!/usr/bin/env python3
"""Seeds a running chirp through its HTTP API, for the wrk scenarios.

Makes USERS accounts (codes read from the server's log, as a person would),
one reader who follows every one of them, TWEETS_PER_USER tweets each, and
writes what the wrk scripts need into bench/out/: tokens.txt (one bearer
token a line), tweets.txt (tweet ids), reader.txt (the reader's token).
Standard library only.
"""
import json, os, re, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

BASE = os.environ.get("CHIRP_BENCH_URL", "http://127.0.0.1:18080") + "/api/v1"
LOG = os.environ["CHIRP_BENCH_LOG"]
USERS = int(os.environ.get("USERS", "200"))
TWEETS_PER_USER = int(os.environ.get("TWEETS_PER_USER", "5"))
OUT = os.path.join(os.path.dirname(__file__), "out")
PASSWORD = "bench password 1"


def call(method, path, body=None, token=None):
    req = urllib.request.Request(BASE + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        data = r.read()
        return json.loads(data) if data else None


def code_for(email):
    for _ in range(100):
        with open(LOG, encoding="utf-8", errors="replace") as f:
            text = f.read()
        found = re.findall(r"to=" + re.escape(email) + r"\s+subject=Your chirp code: (\d{6})", text)
        if found:
            return found[-1]
        time.sleep(0.05)
    sys.exit(f"no code for {email} in {LOG}")


def sign_up(name):
    email = f"{name}@bench.example"
    call("POST", "/register", {"email": email, "username": name, "name": name, "password": PASSWORD})
    session = call("POST", "/verify-register", {"email": email, "code": code_for(email)})
    return session["user"]["id"], session["access_token"]


def main():
    os.makedirs(OUT, exist_ok=True)
    started = time.time()
    with ThreadPoolExecutor(8) as pool:
        users = list(pool.map(sign_up, [f"bench_{i:05d}" for i in range(USERS)]))
    reader_id, reader = sign_up("bench_reader")
    print(f"{USERS + 1} users in {time.time() - started:.1f}s", flush=True)

    def follow_and_tweet(user):
        uid, token = user
        call("POST", f"/user/{uid}/follow", token=reader)
        return [call("POST", "/tweet", {"content": f"tweet {i} from {uid}"}, token)["id"] for i in range(TWEETS_PER_USER)]

    with ThreadPoolExecutor(8) as pool:
        tweets = [t for ts in pool.map(follow_and_tweet, users) for t in ts]
    print(f"reader follows {USERS}; {len(tweets)} tweets; {time.time() - started:.1f}s", flush=True)
    with open(os.path.join(OUT, "tokens.txt"), "w") as f:
        f.write("\n".join(t for _, t in users) + "\n")
    with open(os.path.join(OUT, "tweets.txt"), "w") as f:
        f.write("\n".join(tweets) + "\n")
    with open(os.path.join(OUT, "reader.txt"), "w") as f:
        f.write(reader + "\n")


if __name__ == "__main__":
    main()
