DROP TABLE entry_reservations;
