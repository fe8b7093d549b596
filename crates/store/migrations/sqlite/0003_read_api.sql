-- Indexes and rollups for the read API (filled in by the read API work).
SELECT 1;
