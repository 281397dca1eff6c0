#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised, right after
# init.sql (the postgres image runs /docker-entrypoint-initdb.d/ in name order).
# init.sql creates the application role `codecshift` without a password and
# grants it the tables; this gives it the password from POSTGRES_APP_PASSWORD so
# the dashboard, beat and the control worker connect as that role, not as the
# superuser that owns the schema.
# psql substitutes :'app_password' as a quoted literal, so any password is safe.
set -e
if [ -z "${POSTGRES_APP_PASSWORD:-}" ]; then
    echo "initdb-app-role: POSTGRES_APP_PASSWORD is empty; set it in .env" >&2
    exit 1
fi
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-postgres}" --set app_password="$POSTGRES_APP_PASSWORD" <<'SQL'
ALTER ROLE codecshift WITH LOGIN PASSWORD :'app_password';
SQL
echo "initdb-app-role: password set for role codecshift"
