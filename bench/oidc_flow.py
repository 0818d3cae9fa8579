#!/usr/bin/env python3
"""A signed-in user's full authorize -> code -> token exchange against Portcullis, timed.

    bench/oidc_flow.py URL USERNAME PASSWORD CLIENT_ID CLIENT_SECRET REDIRECT_URI [ROUNDS]

Signs in once with the form (as a browser would), then repeats: GET /oauth2/authorize (the
answer is the redirect with the code), POST /oauth2/token. Prints the p50 and p95 of one
round trip in milliseconds, and one access token (for the userinfo load). Standard library only.
"""
import base64
import http.cookiejar
import json
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main():
    url, username, password, client_id, secret, redirect_uri = sys.argv[1:7]
    rounds = int(sys.argv[7]) if len(sys.argv) > 7 else 300
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirects())

    def call(request):
        try:
            return opener.open(request)
        except urllib.error.HTTPError as answer:  # 3xx and errors arrive here
            return answer

    page = call(f"{url}/login").read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": csrf, "next": ""})
    signed = call(urllib.request.Request(f"{url}/login", data=form.encode(), method="POST"))
    assert signed.status == 303, signed.status
    query = urllib.parse.urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": "openid profile email", "state": "s"}
    )
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    timings, access = [], ""
    for _ in range(rounds):
        started = time.perf_counter()
        answer = call(f"{url}/oauth2/authorize?{query}")
        location = answer.headers["Location"]
        code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)["code"][0]
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})
        request = urllib.request.Request(f"{url}/oauth2/token", data=body.encode(), method="POST")
        request.add_header("Authorization", f"Basic {basic}")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        tokens = json.load(call(request))
        timings.append((time.perf_counter() - started) * 1000)
        access = tokens["access_token"]
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(json.dumps({"p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "rounds": rounds, "access_token": access}))


if __name__ == "__main__":
    main()
