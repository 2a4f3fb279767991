-- Statement texts copied from pg_stat_statements before the dashboard redacted them may hold
-- role passwords (ALTER ROLE ... PASSWORD '...'): redact them in place, as services/dbhealth/session.py
-- now does before storing. Here everything from the literal on is cut (more than needed, never
-- less); conninfo strings lose their password=... value.
UPDATE dashboard.query_texts
   SET query = regexp_replace(
                   regexp_replace(query, '(password\s+)([eE]?''|\$).*$', '\1''<redacted>''', 'i'),
                   '(password\s*=\s*)[^\s'']+', '\1<redacted>', 'gi')
 WHERE query ~* 'password';
