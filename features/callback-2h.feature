@callback_2h @deadline
Feature: A promised callback is made within 2 business hours
  When an agent promises to call a customer back, an outbound phone call to that customer
  follows within two hours of the callback desk's opening hours: Monday to Friday
  08:00-12:30 and 13:30-20:00 (closed for lunch), Saturday 09:00-13:00, London time,
  closed on English public holidays. Cancelling the callback ends the promise. The
  Callback Desk owns it, and is warned once half the time has gone.

  @kept
  Scenario: A callback promised just before lunch is made after lunch, in time
    Monday 12:00 to 12:30 counts 30 minutes; lunch does not count; 90 more minutes from
    13:30 make it due at 15:00.

    Given claims promises "C-1" a callback on Mon 2024-03-04 12:00 Europe/London
    When callbacks calls "C-1" back on Mon 2024-03-04 14:45 Europe/London
    Then the "callback-2h" promise is kept for "C-1"
    And it was due on Mon 2024-03-04 15:00 Europe/London
    And the evidence names the callback promise of Mon 2024-03-04 12:00 Europe/London
    And the evidence names the phone call of Mon 2024-03-04 14:45 Europe/London
    And nobody is alerted about "callback-2h"

  @broken
  Scenario: A callback made too late breaks the promise and the Callback Desk hears of it
    Given claims promises "C-1" a callback on Mon 2024-03-04 12:00 Europe/London
    When callbacks calls "C-1" back on Mon 2024-03-04 15:10 Europe/London
    Then the "callback-2h" promise is broken for "C-1"
    And it was decided on Mon 2024-03-04 15:00 Europe/London
    And the "callbacks" team is alerted that "callback-2h" is broken for "C-1"

  @edge
  Scenario Outline: A call on the stroke of the deadline is in time
    Given claims promises "C-1" a callback on Mon 2024-03-04 12:00 Europe/London
    When callbacks calls "C-1" back on Mon 2024-03-04 <called at> Europe/London
    Then the "callback-2h" promise is <verdict> for "C-1"

    @kept
    Examples: in time
      | called at | verdict |
      | 15:00     | kept    |

    @broken
    Examples: too late
      | called at | verdict |
      | 15:01     | broken  |

  @edge
  Scenario Outline: A callback promised on Saturday lunchtime is due on Monday morning
    Saturday 12:30 to 13:00 counts 30 minutes; Sunday is closed; the other 90 minutes run
    from 08:00 on Monday, so the call is due at 09:30.

    Given contact-centre promises "C-1" a callback on Sat 2024-03-02 12:30 Europe/London
    When callbacks calls "C-1" on <called on>
    Then the "callback-2h" promise is <verdict> for "C-1"
    And it was due on Mon 2024-03-04 09:30 Europe/London

    @kept
    Examples: before 09:30 on Monday
      | called on                          | verdict |
      | Mon 2024-03-04 09:20 Europe/London | kept    |

    @broken
    Examples: after 09:30 on Monday
      | called on                          | verdict |
      | Mon 2024-03-04 09:45 Europe/London | broken  |

  @edge @kept
  Scenario: Good Friday is closed, so a Thursday evening callback is due on Saturday morning
    Thursday 19:00 to 20:00 counts one hour; Good Friday is a public holiday; the second
    hour runs from 09:00 on Saturday.

    Given claims promises "C-1" a callback on Thu 2024-03-28 19:00 Europe/London
    When callbacks calls "C-1" back on Sat 2024-03-30 09:55 Europe/London
    Then the "callback-2h" promise is kept for "C-1"
    And it was due on Sat 2024-03-30 10:00 Europe/London

  @edge @broken
  Scenario: Easter Monday is closed, so a Saturday callback waits until Tuesday
    Saturday 12:30 to 13:00 counts 30 minutes; Sunday and Easter Monday are closed; the
    other 90 minutes run from 08:00 on Tuesday, in British Summer Time.

    Given claims promises "C-1" a callback on Sat 2024-03-30 12:30 Europe/London
    When the clock reaches Tue 2024-04-02 09:31 Europe/London
    Then the "callback-2h" promise is broken for "C-1"
    And it was decided on Tue 2024-04-02 09:30 Europe/London
    And it was due on Tue 2024-04-02 08:30 UTC

  @edge
  Scenario: A cancelled callback is neither kept nor broken
    Given claims promises "C-1" a callback on Mon 2024-03-04 10:00 Europe/London
    When claims cancels the callback for "C-1" on Mon 2024-03-04 10:30 Europe/London
    And the clock reaches Mon 2024-03-04 18:00 Europe/London
    Then the "callback-2h" promise is cancelled for "C-1"
    And nobody is alerted about "callback-2h"

  @edge
  Scenario: Half way through the two hours the callback is at risk
    One business hour after 12:00 is 14:00, because of the lunch break.

    Given claims promises "C-1" a callback on Mon 2024-03-04 12:00 Europe/London
    When the clock reaches Mon 2024-03-04 14:00 Europe/London
    Then the "callback-2h" promise is at risk for "C-1"
    And the "callbacks" team is alerted that "callback-2h" is at risk for "C-1"

  @edge @kept
  Scenario: A call logged late turns the breach into a kept promise, with a correction
    Given claims promises "C-1" a callback on Mon 2024-03-04 12:00 Europe/London
    And the clock reaches Mon 2024-03-04 16:00 Europe/London
    And the "callbacks" team is alerted that "callback-2h" is broken for "C-1"
    When a record arrives late: callbacks calls "C-1" back on Mon 2024-03-04 14:30 Europe/London
    Then the "callback-2h" promise is kept for "C-1"
    And a correction is sent to the "callbacks" team

  @edge @broken
  Scenario: Calling another customer does not keep this customer's callback
    Given claims promises "C-1" a callback on Mon 2024-03-04 12:00 Europe/London
    When callbacks calls "C-2" back on Mon 2024-03-04 13:45 Europe/London
    And the clock reaches Mon 2024-03-04 15:30 Europe/London
    Then the "callback-2h" promise is broken for "C-1"
