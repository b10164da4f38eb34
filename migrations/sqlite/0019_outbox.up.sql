-- The outbox: events written in the transaction of the change they
-- describe, published to the event bus by the relay, which deletes them
-- once the bus has them. seq orders them and names each one: consumers
-- drop an event whose seq they have seen, so it is never reused
-- (AUTOINCREMENT), even once the table is empty.
CREATE TABLE outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    type    TEXT    NOT NULL,
    payload BLOB    NOT NULL,
    at      INTEGER NOT NULL
);
