@ask_once @never
Feature: Ask Once - a customer is never asked twice for the same information
  Once a customer has given us a piece of information, on any channel and to any team,
  nobody asks them for it again for a year (365 days). Customer Care owns the promise
  and is alerted whenever someone asks again.

  Every question we ask is judged on its own: it breaks the promise when the customer
  already gave that item earlier, within the year before the question.

  @broken
  Scenario: Asking again for what the customer already gave on the phone breaks the promise
    Given customer "C-1" gave their "policy_number" by phone to claims on Fri 2024-03-01 10:00
    When contact-centre asks "C-1" for "policy_number" by email on Mon 2024-03-04 09:00
    Then the "ask-once" promise is broken for "C-1"
    And the evidence names the phone call of Fri 2024-03-01
    And the evidence names the question of Mon 2024-03-04
    And the "customer-care" team is alerted that "ask-once" is broken for "C-1"

  @kept
  Scenario: Asking for something the customer has not given yet keeps the promise
    Given customer "C-1" gave their "policy_number" by phone to claims on Fri 2024-03-01 10:00
    When contact-centre asks "C-1" for "date_of_birth" by email on Mon 2024-03-04 09:00
    Then the "ask-once" promise is kept for "C-1"
    And the evidence lists 1 record
    And nobody is alerted about "ask-once"

  @kept
  Scenario: What another customer gave does not count
    Given customer "C-2" gave their "policy_number" by phone to claims on Fri 2024-03-01 10:00
    When contact-centre asks "C-1" for "policy_number" by email on Mon 2024-03-04 09:00
    Then the "ask-once" promise is kept for "C-1"

  @edge @broken
  Scenario Outline: The same item asked on another channel by another team still breaks it
    Given customer "C-1" gave their "<item>" by <given by> to <given to> on Tue 2024-04-02 14:00 Europe/London
    When <asking team> asks "C-1" for "<item>" by <asked by> on Thu 2024-04-04 11:30 Europe/London
    Then the "ask-once" promise is broken for "C-1"
    And the "customer-care" team is alerted that "ask-once" is broken for "C-1"

    Examples:
      | item           | given by | given to       | asking team    | asked by |
      | policy_number  | phone    | claims         | contact-centre | email    |
      | address        | chat     | billing        | claims         | phone    |
      | bank_details   | branch   | branch-network | billing        | sms      |
      | vehicle_reg    | app      | claims         | claims         | app      |

  @edge
  Scenario Outline: The look-back window is 365 days, counted to the minute
    Given customer "C-1" gave their "policy_number" by phone to claims on Fri 2024-03-01 10:00
    When contact-centre asks "C-1" for "policy_number" by email on <asked on>
    Then the "ask-once" promise is <verdict> for "C-1"

    @broken
    Examples: within the year (2024 is a leap year: 365 days later is 1 March 2025)
      | asked on             | verdict |
      | Thu 2024-12-19 16:45 | broken  |
      | Sat 2025-03-01 10:00 | broken  |

    @kept
    Examples: more than 365 days later
      | asked on             | verdict |
      | Sat 2025-03-01 10:01 | kept    |
      | Sun 2025-03-02 10:00 | kept    |

  @edge @kept
  Scenario: Information given after the question does not make the question a repeat
    Given contact-centre asks "C-1" for "policy_number" by email on Mon 2024-03-04 09:00
    When customer "C-1" gives their "policy_number" by email to contact-centre on Mon 2024-03-04 11:20
    Then the "ask-once" promise is kept for "C-1"

  @edge @broken
  Scenario: A record that arrives late turns a kept question into a broken promise
    The claims system sends its call log a day late: the question was judged fine when it
    came in, and is judged again when the earlier phone call arrives.

    Given contact-centre asks "C-1" for "policy_number" by email on Mon 2024-03-04 09:00
    And the "ask-once" promise is kept for "C-1"
    When a record arrives late: customer "C-1" gave their "policy_number" by phone to claims on Fri 2024-03-01 10:00
    Then the "ask-once" promise is broken for "C-1"
    And the evidence names the phone call of Fri 2024-03-01
    And the "customer-care" team is alerted that "ask-once" is broken for "C-1"

  @edge @broken
  Scenario: Every question is its own opportunity, and the evidence names the latest answer
    Given customer "C-1" gave their "policy_number" by phone to claims on Fri 2024-03-01 10:00
    And customer "C-1" gave their "policy_number" by chat to billing on Wed 2024-03-06 15:00
    When contact-centre asks "C-1" for "date_of_birth" by email on Thu 2024-03-07 09:00
    And claims asks "C-1" for "policy_number" by phone on Fri 2024-03-08 10:00
    Then the "ask-once" outcomes for "C-1" are:
      | opened               | state  |
      | Thu 2024-03-07 09:00 | kept   |
      | Fri 2024-03-08 10:00 | broken |
    And the "ask-once" promise is broken for "C-1"
    And the evidence names the chat of Wed 2024-03-06
