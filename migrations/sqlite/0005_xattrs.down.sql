DROP TABLE xattrs;
