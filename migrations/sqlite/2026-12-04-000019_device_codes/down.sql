DROP TABLE oauth_device_codes;
