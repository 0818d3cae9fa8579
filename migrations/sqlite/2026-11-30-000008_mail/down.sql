DROP TABLE email_links;
DROP TABLE outbox;
