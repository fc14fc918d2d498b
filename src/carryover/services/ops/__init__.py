"""Operations: the figures an operator scrapes about the running system."""
