-- Entry ids reserved ahead are reserved for one owner: a client names the
-- files it creates before it tells the server (the mount's creates,
-- batched), and only the owner an id was handed to may create an entry
-- with it, once (the row goes with the create). Rows are few per owner:
-- the store drops an owner's oldest past a bound.
CREATE TABLE entry_reservations (
    id       INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE
);
CREATE INDEX entry_reservations_owner ON entry_reservations(owner_id, id);
