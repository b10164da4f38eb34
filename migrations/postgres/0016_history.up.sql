-- History that follows the document: a file renamed over another (an
-- editor's save) continues the replaced file's history instead of taking
-- its versions. hist_prev is the replaced file, kept out of the trash
-- while its history is part of this one's; hist_base is the place of its
-- last version in that history: this file's own version n is number
-- hist_base + n to users. Versions are never renumbered or moved.
ALTER TABLE entries ADD COLUMN hist_prev BIGINT;
ALTER TABLE entries ADD COLUMN hist_base BIGINT NOT NULL DEFAULT 0;
CREATE INDEX entries_hist_prev ON entries(hist_prev) WHERE hist_prev IS NOT NULL;
