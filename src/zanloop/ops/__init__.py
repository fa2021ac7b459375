"""Operations (X7): health, metrics, logging."""
