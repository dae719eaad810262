-- An API key may be limited to some connections: a JSON array of connection ids, or NULL for
-- every connection. A scoped key also cannot manage connections.
ALTER TABLE api_keys ADD COLUMN connections TEXT;
