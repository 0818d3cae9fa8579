-- Nothing to undo: what this creates belongs to 000009 and 000010 (whose down migrations drop it).
SELECT 1;
