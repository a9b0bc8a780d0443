-- Survey responses: one row per account (user_id UNIQUE), editable until the survey closes.
-- One column per non-multi question of survey_app/questionnaire.py (codes as VARCHAR;
-- share_moved stores its percentage); multi questions (priorities, payment_methods) are
-- rows of response_choices. tests/app/test_survey_schema.py checks that these columns match
-- the definition. Ids are BIGINT UNSIGNED to match users.id (0001) for the foreign key.
CREATE TABLE IF NOT EXISTS responses (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT UNSIGNED NOT NULL,
    income_bracket VARCHAR(32) NOT NULL,
    household_size TINYINT UNSIGNED NOT NULL,
    shopping_frequency VARCHAR(32) NOT NULL,
    monthly_spend DECIMAL(10,2) NOT NULL,
    neighbourhood VARCHAR(32) NOT NULL,
    age_bracket VARCHAR(32) NOT NULL,
    travel_mode VARCHAR(32) NOT NULL,
    max_distance VARCHAR(32) NOT NULL,
    current_store VARCHAR(32) NOT NULL,
    purchase_intent TINYINT NOT NULL,
    share_moved TINYINT NOT NULL,
    buys_online VARCHAR(32) NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY responses_user (user_id),
    KEY responses_neighbourhood (neighbourhood, income_bracket),
    KEY responses_income (income_bracket),
    CONSTRAINT responses_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The picks of multi questions: one row per (response, question, choice).
CREATE TABLE IF NOT EXISTS response_choices (
    response_id BIGINT UNSIGNED NOT NULL,
    question VARCHAR(32) NOT NULL,
    choice VARCHAR(32) NOT NULL,
    PRIMARY KEY (response_id, question, choice),
    KEY response_choices_question (question, choice),
    CONSTRAINT response_choices_response_fk FOREIGN KEY (response_id)
        REFERENCES responses (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
