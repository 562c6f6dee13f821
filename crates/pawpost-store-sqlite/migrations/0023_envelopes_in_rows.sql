-- A small envelope (ciphertext only) kept in its message's row, written in the same
-- commit as the row, so that one sync makes both durable. NULL when the envelope lies in
-- the blob store (messages.blob_key says which). Gone with the row.
ALTER TABLE messages ADD COLUMN envelope BLOB;
