-- A toy that refuses a message for good (its sender was blocked or removed while it
-- waited, or it cannot be played) says so; the sender's list shows it was never heard.
ALTER TABLE receipts ADD COLUMN refused_at timestamptz;
ALTER TABLE receipts ADD COLUMN refusal text;
