@two_handoffs @limit
Feature: A case changes hands at most twice
  A customer's case is passed between teams at most twice in any 30 days. Every handoff
  is judged when it happens: it breaks the promise when it is the third (or a later one)
  within the 30 days that end with it. Operations owns the promise and is alerted at every
  handoff too many, so a case that starts bouncing again months later is reported again.

  Background:
    Given customer "C-7" opens case "K-1" with claims by phone on Mon 2024-04-01 08:30

  @kept
  Scenario: Two handoffs are within the promise
    When claims hands case "K-1" over to billing on Mon 2024-04-01 09:00
    And billing hands case "K-1" over to complaints on Wed 2024-04-03 11:00
    Then the "two-handoffs" promise is kept for "K-1"
    And the evidence lists 1 record
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
    And the "operations" team is alerted once that "two-handoffs" is broken for "K-1"

  @edge @broken
  Scenario: Every handoff too many breaks the promise again
    When claims hands case "K-1" over to billing on Mon 2024-04-01 09:00
    And billing hands case "K-1" over to complaints on Tue 2024-04-02 09:00
    And complaints hands case "K-1" over to claims on Wed 2024-04-03 09:00
    And claims hands case "K-1" over to billing on Thu 2024-04-04 09:00
    Then the "two-handoffs" outcomes for "K-1" are:
      | opened               | state  |
      | Mon 2024-04-01 09:00 | kept   |
      | Tue 2024-04-02 09:00 | kept   |
      | Wed 2024-04-03 09:00 | broken |
      | Thu 2024-04-04 09:00 | broken |
    And the "two-handoffs" promise is broken for "K-1"
    And the evidence names the handoff to complaints of Tue 2024-04-02
    And the "operations" team is alerted twice that "two-handoffs" is broken for "K-1"

  @edge @broken
  Scenario: A case that bounces again months later breaks the promise again
    When claims hands case "K-1" over to billing on Mon 2024-04-01 09:00
    And billing hands case "K-1" over to complaints on Tue 2024-04-02 09:00
    And complaints hands case "K-1" over to claims on Wed 2024-04-03 09:00
    And claims hands case "K-1" over to billing on Mon 2024-09-02 09:00
    And billing hands case "K-1" over to complaints on Tue 2024-09-03 09:00
    And complaints hands case "K-1" over to claims on Wed 2024-09-04 09:00
    Then the "two-handoffs" outcomes for "K-1" are:
      | opened               | state  |
      | Mon 2024-04-01 09:00 | kept   |
      | Tue 2024-04-02 09:00 | kept   |
      | Wed 2024-04-03 09:00 | broken |
      | Mon 2024-09-02 09:00 | kept   |
      | Tue 2024-09-03 09:00 | kept   |
      | Wed 2024-09-04 09:00 | broken |
    And the "two-handoffs" promise is broken for "K-1"
    And it was decided on Wed 2024-09-04 09:00
    And the evidence names the handoff to billing of Mon 2024-09-02
    And the "operations" team is alerted twice that "two-handoffs" is broken for "K-1"

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
    And the "operations" team is alerted once that "two-handoffs" is broken for "K-1"
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
