@travel_guarantee @deadline
Feature: A reported booking problem is resolved within 4 hours, day or night
  The travel guarantee: when a traveller reports a problem with a booking, it is resolved
  within four hours, 24 hours a day, 7 days a week, holidays included. A booking the
  traveller cancels ends the clock. Travel Support owns the promise and is warned after
  three hours.

  @kept
  Scenario: A problem reported late on Saturday night is resolved overnight
    Given traveller "T-1" reports a problem with booking "B-100" by app on Sat 2024-03-02 23:00
    When travel-support resolves the problem with booking "B-100" on Sun 2024-03-03 02:30
    Then the "travel-guarantee" promise is kept for "B-100"
    And it was due on Sun 2024-03-03 03:00
    And the evidence names the problem report of Sat 2024-03-02
    And the evidence names the resolution of Sun 2024-03-03
    And nobody is alerted about "travel-guarantee"

  @broken
  Scenario: A problem resolved after four hours breaks the guarantee
    Given traveller "T-1" reports a problem with booking "B-100" by phone on Sat 2024-03-02 23:00
    When travel-support resolves the problem with booking "B-100" on Sun 2024-03-03 03:15
    Then the "travel-guarantee" promise is broken for "T-1"
    And it was decided on Sun 2024-03-03 03:00
    And the evidence names the resolution of Sun 2024-03-03
    And the "travel-support" team is alerted that "travel-guarantee" is broken for "B-100"

  @edge
  Scenario Outline: Resolved on the stroke of the fourth hour is in time
    Given traveller "T-1" reports a problem with booking "B-100" by chat on Sat 2024-03-02 23:00
    When travel-support resolves the problem with booking "B-100" on <resolved on>
    Then the "travel-guarantee" promise is <verdict> for "B-100"

    @kept
    Examples: in time
      | resolved on          | verdict |
      | Sun 2024-03-03 02:59 | kept    |
      | Sun 2024-03-03 03:00 | kept    |

    @broken
    Examples: too late
      | resolved on          | verdict |
      | Sun 2024-03-03 03:01 | broken  |

  @edge @kept
  Scenario: Good Friday makes no difference to the guarantee
    Given traveller "T-1" reports a problem with booking "B-100" by app on Fri 2024-03-29 22:00 Europe/London
    When travel-support resolves the problem with booking "B-100" on Sat 2024-03-30 01:45 Europe/London
    Then the "travel-guarantee" promise is kept for "B-100"
    And it was due on Sat 2024-03-30 02:00 Europe/London

  @edge
  Scenario: Four hours are real hours on the night the clocks go forward
    Reported at 23:30 GMT on Saturday; the clocks jump from 01:00 to 02:00 that night,
    so four hours later it is 04:30 British Summer Time.

    Given traveller "T-1" reports a problem with booking "B-100" by phone on Sat 2024-03-30 23:30 Europe/London
    When the clock reaches Sun 2024-03-31 02:00 UTC
    Then the "travel-guarantee" promise is pending for "B-100"
    And it is due on Sun 2024-03-31 04:30 Europe/London
    And it is due on Sun 2024-03-31 04:30 +01:00

  @edge
  Scenario: A booking the traveller cancels ends the guarantee
    Given traveller "T-1" reports a problem with booking "B-100" by app on Sat 2024-03-02 23:00
    When traveller "T-1" cancels booking "B-100" on Sun 2024-03-03 01:00
    And the clock reaches Sun 2024-03-03 09:00
    Then the "travel-guarantee" promise is cancelled for "B-100"
    And nobody is alerted about "travel-guarantee"

  @edge @broken
  Scenario: Cancelling the booking after the deadline does not undo the breach
    Given traveller "T-1" reports a problem with booking "B-100" by app on Sat 2024-03-02 23:00
    When traveller "T-1" cancels booking "B-100" on Sun 2024-03-03 05:00
    Then the "travel-guarantee" promise is broken for "B-100"
    And the evidence names the cancellation of Sun 2024-03-03

  @edge
  Scenario: After three hours the problem is at risk, and Travel Support is warned
    Given traveller "T-1" reports a problem with booking "B-100" by sms on Sat 2024-03-02 23:00
    When the clock reaches Sun 2024-03-03 02:00
    Then the "travel-guarantee" promise is at risk for "B-100"
    And the "travel-support" team is alerted that "travel-guarantee" is at risk for "B-100"

  @edge @kept
  Scenario: A resolution that arrives late revises the breach, and a correction follows
    Given traveller "T-1" reports a problem with booking "B-100" by app on Sat 2024-03-02 23:00
    And the clock reaches Sun 2024-03-03 08:00
    And the "travel-guarantee" promise is broken for "B-100"
    When a record arrives late: travel-support resolves the problem with booking "B-100" on Sun 2024-03-03 01:30
    Then the "travel-guarantee" promise is kept for "B-100"
    And a correction is sent to the "travel-support" team

  @edge
  Scenario: A second problem with the same booking starts a new four hours
    Given traveller "T-1" reports a problem with booking "B-100" by app on Sat 2024-03-02 23:00
    And travel-support resolves the problem with booking "B-100" on Sun 2024-03-03 01:00
    When traveller "T-1" reports a problem with booking "B-100" by phone on Sun 2024-03-03 09:00
    And the clock reaches Sun 2024-03-03 13:01
    Then the "travel-guarantee" outcomes for "B-100" are:
      | opened               | state  |
      | Sat 2024-03-02 23:00 | kept   |
      | Sun 2024-03-03 09:00 | broken |
