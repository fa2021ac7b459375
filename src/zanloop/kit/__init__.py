"""Small helpers shared by every area: ids, time, money, pagination."""
