-- The keys access tokens are signed with (EdDSA or ES256), shared by every instance. The
-- private key is sealed (AES-256-GCM under a key derived from the signing secret); the public
-- key is published in /.well-known/jwks.json from `published_at`, signs from `signs_from`,
-- stops signing at `retired_at` and leaves the JWKS (and verification) after `drop_after`,
-- when every token it signed has expired. An `HS256` row holds no key: it records until when
-- tokens signed with the secret (before the switch to a public-key algorithm) still verify.
CREATE TABLE signing_keys (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kid TEXT COLLATE "C" NOT NULL UNIQUE,
    alg TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256', 'HS256')),
    sealed_private_key TEXT,
    public_key TEXT,
    published_at TIMESTAMP NOT NULL,
    signs_from TIMESTAMP NOT NULL,
    retired_at TIMESTAMP,
    drop_after TIMESTAMP
);
