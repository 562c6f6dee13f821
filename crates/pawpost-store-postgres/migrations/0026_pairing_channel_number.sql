-- The pairing number of the toy protocol version 3 channel (docs/TOY-PROTOCOL.md): the
-- connection that asked for the code stores the three digits its side of the handshake
-- computed, and a parent's claim shows those digits instead of drawing a number. Empty
-- for a version 2 toy, whose claim draws one as before.
ALTER TABLE pairings ADD COLUMN channel_number text;
