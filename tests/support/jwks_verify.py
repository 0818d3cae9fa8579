#!/usr/bin/env python3
"""A service that trusts Portcullis without sharing a secret with it: checks an access token
using nothing but the issuer's published metadata and keys (PyJWT).

    jwks_verify.py ISSUER_BASE_URL TOKEN

Reads ISSUER_BASE_URL/.well-known/oauth-authorization-server, fetches its jwks_uri, picks the
key the token names (kid), and verifies signature, expiry, issuer and audience with the
algorithm the key is published for. Prints the claims as JSON and exits 0, or prints why
and exits 1.
"""
import json
import sys
import urllib.request

import jwt


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    with urllib.request.urlopen(f"{base}/.well-known/oauth-authorization-server", timeout=10) as answer:
        metadata = json.load(answer)
    keys = jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=False)
    try:
        key = keys.get_signing_key_from_jwt(token)
        # The algorithm comes from the published key, never from the token's own header.
        algorithm = key.algorithm_name
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience="portcullis",
            issuer=metadata["issuer"],
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
        )
    except Exception as error:  # every refusal is an answer, not a crash
        print(f"refused: {type(error).__name__}: {error}")
        return 1
    print(json.dumps({"alg": algorithm, "claims": claims}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
