package com.example.core;

import java.util.Map;
import java.util.Optional;

import com.example.api.Catalog;
import com.example.api.Quote;
import org.apache.commons.lang3.StringUtils;

/** A catalog with a fixed price list; item names are matched case- and space-insensitively. */
public class FixedCatalog implements Catalog {
    private final Map<String, Long> cents;

    public FixedCatalog(Map<String, Long> cents) {
        this.cents = Map.copyOf(cents);
    }

    @Override
    public Optional<Quote> quote(String item, int quantity) {
        String key = StringUtils.lowerCase(StringUtils.deleteWhitespace(item));
        Long price = cents.get(key);
        if (price == null || quantity <= 0) {
            return Optional.empty();
        }
        return Optional.of(new Quote(StringUtils.capitalize(key), quantity, price * quantity));
    }
}
