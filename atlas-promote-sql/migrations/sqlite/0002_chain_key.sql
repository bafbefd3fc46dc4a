-- Whether the audit chain is keyed (HMAC-SHA256 with a key kept outside the
-- database): '' when it is not, else the key's fingerprint
-- (`ChainKey::fingerprint`), which tells a wrong key from a broken chain
-- without revealing the key.
INSERT INTO meta (name, value) VALUES ('chain_key', '');
