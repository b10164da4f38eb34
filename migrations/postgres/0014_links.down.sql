-- Back to one name per entry: the further names of hard-linked files go.
DROP INDEX entries_subdirs;
DROP TABLE links;
