-- Backfill progress (filled in by the backfill work).
SELECT 1;
