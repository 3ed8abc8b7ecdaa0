@detractor_follow_up_48h @deadline
Feature: A detractor's survey is followed up within 48 hours
  A survey answer scoring 6 or less on the 0-10 "would you recommend us" question is
  followed up by an outbound contact (a message, a call or a follow-up, on any channel)
  within 48 hours, around the clock: weekends and public holidays count. CX Insights owns
  the promise and is warned after 24 hours.

  @kept
  Scenario: A detractor called back on Sunday morning is followed up in time
    Given customer "C-1" answers the survey with a score of 3 on Fri 2024-03-01 17:00
    When cx-insights follows up with "C-1" by phone on Sun 2024-03-03 10:00
    Then the "detractor-follow-up-48h" promise is kept for "C-1"
    And it was due on Sun 2024-03-03 17:00
    And the evidence names the survey response of Fri 2024-03-01
    And the evidence names the follow-up of Sun 2024-03-03
    And nobody is alerted about "detractor-follow-up-48h"

  @broken
  Scenario: A detractor nobody contacts within 48 hours breaks the promise
    Given customer "C-1" answers the survey with a score of 6 on Fri 2024-03-01 17:00
    When the clock reaches Sun 2024-03-03 17:01
    Then the "detractor-follow-up-48h" promise is broken for "C-1"
    And it was decided on Sun 2024-03-03 17:00
    And the "cx-insights" team is alerted that "detractor-follow-up-48h" is broken for "C-1"

  @edge @broken
  Scenario Outline: Every score from 0 to 6 is a detractor's
    Given customer "C-1" answers the survey with a score of <score> on Mon 2024-03-04 09:00
    When the clock reaches Wed 2024-03-06 09:01
    Then the "detractor-follow-up-48h" promise is broken for "C-1"

    Examples:
      | score |
      | 0     |
      | 4     |
      | 6     |

  @edge
  Scenario Outline: Passives and promoters need no follow-up
    Given customer "C-1" answers the survey with a score of <score> on Mon 2024-03-04 09:00
    When the clock reaches Wed 2024-03-06 09:01
    Then the "detractor-follow-up-48h" promise has no opportunity for "C-1"

    Examples:
      | score |
      | 7     |
      | 8     |
      | 10    |

  @edge
  Scenario: A survey answered without a score needs no follow-up
    Given customer "C-1" answers the survey without a score on Mon 2024-03-04 09:00
    When the clock reaches Thu 2024-03-07 09:00
    Then the "detractor-follow-up-48h" promise has no opportunity for "C-1"

  @edge
  Scenario Outline: The follow-up is due 48 hours after the answer, to the minute
    Given customer "C-1" answers the survey with a score of 2 on Fri 2024-03-01 17:00
    When cx-insights follows up with "C-1" by email on <followed up on>
    Then the "detractor-follow-up-48h" promise is <verdict> for "C-1"

    @kept
    Examples: in time
      | followed up on       | verdict |
      | Sun 2024-03-03 17:00 | kept    |

    @broken
    Examples: too late
      | followed up on       | verdict |
      | Sun 2024-03-03 17:01 | broken  |

  @edge @kept
  Scenario Outline: Any team may follow up, on any channel
    Given customer "C-1" answers the survey with a score of 1 on Mon 2024-03-04 09:00
    When <team> follows up with "C-1" by <channel> on Tue 2024-03-05 14:00
    Then the "detractor-follow-up-48h" promise is kept for "C-1"

    Examples:
      | team           | channel |
      | cx-insights    | email   |
      | contact-centre | sms     |
      | claims         | chat    |
      | branch-network | video   |

  @edge @kept
  Scenario: A phone call from the contact centre counts as the follow-up
    Given customer "C-1" answers the survey with a score of 5 on Mon 2024-03-04 09:00
    When contact-centre calls "C-1" on Mon 2024-03-04 16:20
    Then the "detractor-follow-up-48h" promise is kept for "C-1"

  @edge @broken
  Scenario: A message from the customer is not a follow-up
    Given customer "C-1" answers the survey with a score of 5 on Mon 2024-03-04 09:00
    And customer "C-1" emails contact-centre about case "K-3" on Mon 2024-03-04 10:00
    When the clock reaches Wed 2024-03-06 09:01
    Then the "detractor-follow-up-48h" promise is broken for "C-1"

  @edge @kept
  Scenario: Good Friday counts: the 48 hours run around the clock
    Given customer "C-1" answers the survey with a score of 4 on Thu 2024-03-28 18:00 Europe/London
    When cx-insights follows up with "C-1" by phone on Sat 2024-03-30 17:30 Europe/London
    Then the "detractor-follow-up-48h" promise is kept for "C-1"
    And it was due on Sat 2024-03-30 18:00 Europe/London

  @edge
  Scenario: 48 hours are real hours, even when the clocks go forward
    The clocks go forward at 01:00 on Sunday 31 March 2024, so 48 hours after Saturday
    noon (GMT) end at 13:00 on Monday, British Summer Time.

    Given customer "C-1" answers the survey with a score of 4 on Sat 2024-03-30 12:00 Europe/London
    When the clock reaches Sun 2024-03-31 12:00 Europe/London
    Then the "detractor-follow-up-48h" promise is pending for "C-1"
    And it is due on Mon 2024-04-01 13:00 Europe/London

  @edge
  Scenario: After 24 hours without a follow-up the survey is at risk
    Given customer "C-1" answers the survey with a score of 3 on Fri 2024-03-01 17:00
    When the clock reaches Sat 2024-03-02 17:00
    Then the "detractor-follow-up-48h" promise is at risk for "C-1"
    And the "cx-insights" team is alerted that "detractor-follow-up-48h" is at risk for "C-1"

  @edge @kept
  Scenario: A follow-up logged late revises the breach, and CX Insights gets a correction
    Given customer "C-1" answers the survey with a score of 3 on Fri 2024-03-01 17:00
    And the clock reaches Mon 2024-03-04 09:00
    And the "detractor-follow-up-48h" promise is broken for "C-1"
    When a record arrives late: cx-insights follows up with "C-1" by phone on Sat 2024-03-02 11:00
    Then the "detractor-follow-up-48h" promise is kept for "C-1"
    And a correction is sent to the "cx-insights" team
