package com.example.api;

import java.util.Optional;

/** Prices items; implemented in shop-core. */
public interface Catalog {
    Optional<Quote> quote(String item, int quantity);
}
