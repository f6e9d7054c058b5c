-- A station's proposed next key (`station keys rotate`), until an admin accepts it.
ALTER TABLE stations ADD COLUMN pending_public_key TEXT;
ALTER TABLE stations ADD COLUMN pending_fingerprint TEXT;
