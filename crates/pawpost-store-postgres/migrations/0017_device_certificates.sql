-- Device certificates: an existing device of an account signed a new device's public
-- identity (docs/ENVELOPE.md, "Device certificates"); the server checked the signature
-- against the certifier's identity before storing it. One per certified device, gone with
-- it; the certifier is not a reference, so a certificate outlives the device that made it.
CREATE TABLE device_certificates (
    device_id           uuid PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    certifier_device_id uuid NOT NULL,
    signature           bytea NOT NULL CHECK (octet_length(signature) = 64),
    created_at          timestamptz NOT NULL
);
