-- The registry notification log admins read (issue 21): what each notification announced and
-- what the service did with it. Rows of earlier releases keep NULL here (they were recorded
-- as keys only).
ALTER TABLE notifications ADD COLUMN repository TEXT;
ALTER TABLE notifications ADD COLUMN tag TEXT;
ALTER TABLE notifications ADD COLUMN digest TEXT;
ALTER TABLE notifications ADD COLUMN actor TEXT;
ALTER TABLE notifications ADD COLUMN outcome TEXT;
CREATE INDEX notifications_received ON notifications (received_at);
