@complaint_3bd @deadline
Feature: A complaint is resolved by the end of the third business day after it arrives
  A complaint is resolved by close of business on the third UK business day following the
  day it arrives: 17:30 London time on the uk-office calendar (Monday to Friday,
  09:00-17:30, closed on English public holidays and on Christmas Eve). The day it arrives
  never counts, whatever the hour, so complaints made at 08:00 and at 23:59 on the same
  Monday are both due on Thursday at 17:30. This is `within: 3bd`, business days; `3d`
  would be 72 hours of opening hours, more than eight business days. Customer Care owns
  the promise: it hears when half of a complaint's business time has gone (at risk) and
  when it is broken.

  @kept
  Scenario: A complaint made on Monday morning and resolved on Thursday afternoon is in time
    Given customer "C-1" complains to customer-care about case "K-9" by phone on Mon 2024-03-04 10:00 Europe/London
    When customer-care resolves the complaint on case "K-9" on Thu 2024-03-07 16:00 Europe/London
    Then the "complaint-3bd" promise is kept for "C-1"
    And it was due on Thu 2024-03-07 17:30 Europe/London
    And the evidence names the complaint of Mon 2024-03-04
    And the evidence names the complaint resolution of Thu 2024-03-07

  @broken
  Scenario: A complaint still open after Thursday's close of business is broken, and Customer Care hears of it
    Given customer "C-1" complains to customer-care about case "K-9" by phone on Mon 2024-03-04 10:00 Europe/London
    When the clock reaches Thu 2024-03-07 17:31 Europe/London
    Then the "complaint-3bd" promise is broken for "C-1"
    And it was decided on Thu 2024-03-07 17:30 Europe/London
    And the evidence lists 1 record
    And the "customer-care" team is alerted that "complaint-3bd" is broken for "C-1"

  @edge
  Scenario Outline: The hour a complaint arrives does not move its deadline
    Given customer "C-1" complains to customer-care about case "K-9" by email on Mon 2024-03-04 <arrives at> Europe/London
    When customer-care resolves the complaint on case "K-9" on Thu 2024-03-07 <resolved at> Europe/London
    Then the "complaint-3bd" promise is <verdict> for "C-1"
    And it was due on Thu 2024-03-07 17:30 Europe/London

    @kept
    Examples: in time, up to the stroke of the deadline
      | arrives at | resolved at | verdict |
      | 08:00      | 17:30       | kept    |
      | 09:00      | 17:29       | kept    |
      | 17:00      | 17:30       | kept    |
      | 23:59      | 17:30       | kept    |

    @broken
    Examples: a minute too late
      | arrives at | resolved at | verdict |
      | 08:00      | 17:31       | broken  |
      | 23:59      | 17:31       | broken  |

  @edge @kept
  Scenario: A complaint made on Friday evening has Monday as its first business day
    Given customer "C-1" complains to customer-care about case "K-9" by email on Fri 2024-03-01 19:00 Europe/London
    When customer-care resolves the complaint on case "K-9" on Wed 2024-03-06 17:00 Europe/London
    Then the "complaint-3bd" promise is kept for "C-1"
    And it was due on Wed 2024-03-06 17:30 Europe/London

  @edge @broken
  Scenario: Good Friday and Easter Monday are not business days
    A complaint made on Maundy Thursday has the Tuesday, Wednesday and Thursday after Easter
    as its three business days, in British Summer Time by then.

    Given customer "C-1" complains to customer-care about case "K-9" by phone on Thu 2024-03-28 09:00 Europe/London
    When the clock reaches Thu 2024-04-04 17:31 Europe/London
    Then the "complaint-3bd" promise is broken for "C-1"
    And it was decided on Thu 2024-04-04 16:30 UTC

  @edge @kept
  Scenario: Christmas Eve and the Christmas bank holidays are not business days
    Friday 20 December's complaint counts Monday 23, Friday 27 and Monday 30 December.

    Given customer "C-1" complains to customer-care about case "K-9" by email on Fri 2024-12-20 11:00 Europe/London
    When customer-care resolves the complaint on case "K-9" on Mon 2024-12-30 17:00 Europe/London
    Then the "complaint-3bd" promise is kept for "C-1"
    And it was due on Mon 2024-12-30 17:30 Europe/London

  @edge
  Scenario: Half-way through its business time a complaint is at risk, and Customer Care is warned
    A complaint made on Saturday is due on Wednesday at 17:30: Monday, Tuesday and Wednesday
    give it 25.5 business hours, and half of them have gone on Tuesday at 13:15.

    Given customer "C-1" complains to customer-care about case "K-9" by phone on Sat 2024-03-02 12:00 Europe/London
    When the clock reaches Tue 2024-03-05 13:15 Europe/London
    Then the "complaint-3bd" promise is at risk for "C-1"
    And it is due on Wed 2024-03-06 17:30 Europe/London
    And the "customer-care" team is alerted that "complaint-3bd" is at risk for "C-1"
