DROP INDEX chunk_owners_hash;
