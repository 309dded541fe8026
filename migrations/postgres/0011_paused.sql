-- `/pause`: who stopped automatic reviews of a pull request (NULL: not paused).
ALTER TABLE pull_requests ADD COLUMN paused_by TEXT;
