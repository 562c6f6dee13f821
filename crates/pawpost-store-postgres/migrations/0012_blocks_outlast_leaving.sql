-- A blocked member who leaves keeps the block: the row stays, blocked and marked as left,
-- until a parent lifts the block. Invitations are counted per creator for the daily limit.
ALTER TABLE memberships ADD COLUMN has_left boolean NOT NULL DEFAULT false;
CREATE INDEX invitations_by_creator ON invitations(created_by, created_at);
