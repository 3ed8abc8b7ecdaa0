@two_handoffs @limit
Feature: A case changes hands at most twice
  A customer's case is passed between teams at most twice in any 30 days; the third
  handoff within 30 days breaks the promise. Operations owns it.

  Background:
    Given customer "C-7" opens case "K-1" with claims by phone on Mon 2024-04-01 08:30

  @kept
  Scenario: Two handoffs are within the promise
    When claims hands case "K-1" over to billing on Mon 2024-04-01 09:00
    And billing hands case "K-1" over to complaints on Wed 2024-04-03 11:00
    Then the "two-handoffs" promise is kept for "K-1"
    And the evidence lists 2 records
    And nobody is alerted about "two-handoffs"

  @broken
  Scenario: The third handoff within 30 days breaks the promise
    When claims hands case "K-1" over to billing on Mon 2024-04-01 09:00
    And billing hands case "K-1" over to complaints on Wed 2024-04-03 11:00
    And complaints hands case "K-1" over to claims on Thu 2024-04-04 15:00
    Then the "two-handoffs" promise is broken for "K-1"
    And it was decided on Thu 2024-04-04 15:00
    And the evidence lists 3 records
    And the evidence names the handoff to complaints of Wed 2024-04-03
    And the "operations" team is alerted that "two-handoffs" is broken for "K-1"

  @edge
  Scenario Outline: The 30 days are counted from the first of the three handoffs
    When claims hands case "K-1" over to billing on Mon 2024-04-01 09:00
    And billing hands case "K-1" over to complaints on Wed 2024-04-10 09:00
    And complaints hands case "K-1" over to claims on <third handoff>
    Then the "two-handoffs" promise is <verdict> for "K-1"

    @broken
    Examples: within 30 days of the first
      | third handoff        | verdict |
      | Wed 2024-05-01 09:00 | broken  |

    @kept
    Examples: more than 30 days after the first
      | third handoff        | verdict |
      | Wed 2024-05-01 09:01 | kept    |
      | Thu 2024-05-02 09:00 | kept    |

  @edge @broken
  Scenario: The window slides: three handoffs in any 30 days break it, however old the case
    When claims hands case "K-1" over to billing on Mon 2024-04-01 09:00
    And billing hands case "K-1" over to complaints on Fri 2024-05-03 09:00
    And complaints hands case "K-1" over to claims on Mon 2024-05-06 09:00
    And claims hands case "K-1" over to billing on Fri 2024-05-10 09:00
    Then the "two-handoffs" promise is broken for "K-1"
    And it was decided on Fri 2024-05-10 09:00
    And the evidence lists 3 records
    And the evidence names the handoff of Fri 2024-05-03

  @edge @broken
  Scenario: A handoff that arrives late breaks a promise that looked kept
    When claims hands case "K-1" over to billing on Mon 2024-04-01 09:00
    And complaints hands case "K-1" over to claims on Thu 2024-04-04 15:00
    And the "two-handoffs" promise is kept for "K-1"
    And a record arrives late: billing hands case "K-1" over to complaints on Tue 2024-04-02 10:00
    Then the "two-handoffs" promise is broken for "K-1"
    And it was decided on Thu 2024-04-04 15:00
    And the "operations" team is alerted that "two-handoffs" is broken for "K-1"
    And no correction is sent

  @edge @kept
  Scenario: Handoffs of different cases do not add up
    Given customer "C-7" opens case "K-2" with billing by email on Mon 2024-04-01 08:45
    When claims hands case "K-1" over to billing on Mon 2024-04-01 09:00
    And billing hands case "K-2" over to claims on Mon 2024-04-01 10:00
    And claims hands case "K-1" over to complaints on Tue 2024-04-02 09:00
    And claims hands case "K-2" over to complaints on Tue 2024-04-02 10:00
    Then the "two-handoffs" promise is kept for "K-1"
    And the "two-handoffs" promise is kept for "K-2"
