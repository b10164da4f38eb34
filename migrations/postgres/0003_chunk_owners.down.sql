DROP TABLE chunk_owners;
