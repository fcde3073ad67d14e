DROP TABLE deliveries;
DROP TABLE pending;
DROP TABLE names;
DROP TABLE read_positions;
DROP TABLE presence;
DROP TABLE channel_settings;
DROP TABLE settings;
DROP TABLE subscriptions;
