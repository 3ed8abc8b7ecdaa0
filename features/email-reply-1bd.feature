@email_reply_1bd @deadline
Feature: Customer emails are answered within one business day
  Every email from a customer gets a reply within one UK business day: 8 office hours on
  the uk-office calendar (Monday to Friday, 09:00-17:30 London time, closed on English
  public holidays and on Christmas Eve). The clock starts when the customer emails about a
  case, stops at our first reply on that case, pauses while the case waits on the
  customer, and runs again when the customer writes back. A case closed as spam cancels
  it. The Contact Centre owns the promise: it hears when an email is at risk (after 6 of
  the 8 hours) and when it is broken.

  @kept
  Scenario: An email on Friday afternoon answered on Monday is in time
    Friday 16:00 to 17:30 counts 1.5 hours; the weekend does not count; Monday brings
    the remaining 6.5 hours, to 15:30.

    Given customer "C-1" emails contact-centre about case "K-9" on Fri 2024-03-01 16:00 Europe/London
    When contact-centre replies on case "K-9" by email on Mon 2024-03-04 15:00 Europe/London
    Then the "email-reply-1bd" promise is kept for "C-1"
    And it is due on Mon 2024-03-04 15:30 Europe/London
    And the evidence names the customer's email of Fri 2024-03-01
    And the evidence names the reply of Mon 2024-03-04
    And nobody is alerted about "email-reply-1bd"

  @broken
  Scenario: A reply after the business day has run out is late, and Contact Centre hears of it
    Given customer "C-1" emails contact-centre about case "K-9" on Fri 2024-03-01 16:00 Europe/London
    When contact-centre replies on case "K-9" by email on Mon 2024-03-04 16:00 Europe/London
    Then the "email-reply-1bd" promise is broken for "C-1"
    And it was decided on Mon 2024-03-04 15:30 Europe/London
    And the evidence names the reply of Mon 2024-03-04
    And the "contact-centre" team is alerted that "email-reply-1bd" is broken for "C-1"

  @broken
  Scenario: An email nobody answers is broken once the business day has passed
    Given customer "C-1" emails contact-centre about case "K-9" on Mon 2024-03-04 09:00 Europe/London
    When the clock reaches Mon 2024-03-04 17:01 Europe/London
    Then the "email-reply-1bd" promise is broken for "K-9"
    And the evidence lists 1 record
    And the "contact-centre" team is alerted that "email-reply-1bd" is broken for "K-9"

  @edge
  Scenario Outline: A reply on the stroke of the deadline is still in time
    Given customer "C-1" emails contact-centre about case "K-9" on Fri 2024-03-01 16:00 Europe/London
    When contact-centre replies on case "K-9" by email on Mon 2024-03-04 <reply at> Europe/London
    Then the "email-reply-1bd" promise is <verdict> for "C-1"

    @kept
    Examples: in time
      | reply at | verdict |
      | 15:29    | kept    |
      | 15:30    | kept    |

    @broken
    Examples: too late
      | reply at | verdict |
      | 15:31    | broken  |

  @edge @kept
  Scenario: Good Friday and Easter Monday are not business days
    The email arrives on Maundy Thursday at 16:00 (1.5 hours that day). Good Friday, the
    weekend and Easter Monday are closed, so the other 6.5 hours run on Tuesday, in
    British Summer Time by then.

    Given customer "C-1" emails contact-centre about case "K-9" on Thu 2024-03-28 16:00 Europe/London
    When contact-centre replies on case "K-9" by email on Tue 2024-04-02 15:00 Europe/London
    Then the "email-reply-1bd" promise is kept for "C-1"
    And it was due on Tue 2024-04-02 15:30 Europe/London

  @edge @broken
  Scenario: Over Easter the email is broken only after Tuesday 15:30
    Given customer "C-1" emails contact-centre about case "K-9" on Thu 2024-03-28 16:00 Europe/London
    When the clock reaches Tue 2024-04-02 15:31 Europe/London
    Then the "email-reply-1bd" promise is broken for "C-1"
    And it was decided on Tue 2024-04-02 14:30 UTC

  @edge @kept
  Scenario: Waiting on the customer pauses the clock, and their answer restarts it
    Opened Monday 09:00, the email is due Monday 17:00. At 11:00 we wait on the customer
    with 6 hours left; they answer on Tuesday at 10:00, so the reply is due Tuesday 16:00.

    Given customer "C-1" emails contact-centre about case "K-9" on Mon 2024-03-04 09:00 Europe/London
    And contact-centre sets case "K-9" to "waiting_on_customer" on Mon 2024-03-04 11:00 Europe/London
    And customer "C-1" writes again on case "K-9" by email on Tue 2024-03-05 10:00 Europe/London
    When contact-centre replies on case "K-9" by email on Tue 2024-03-05 15:45 Europe/London
    Then the "email-reply-1bd" promise is kept for "C-1"
    And it was due on Tue 2024-03-05 16:00 Europe/London

  @edge
  Scenario: While the case waits on the customer, no time runs out
    Given customer "C-1" emails contact-centre about case "K-9" on Mon 2024-03-04 09:00 Europe/London
    And contact-centre sets case "K-9" to "waiting_on_customer" on Mon 2024-03-04 11:00 Europe/London
    When the clock reaches Fri 2024-03-15 17:00 Europe/London
    Then the "email-reply-1bd" promise is pending for "C-1"
    And it has no due time while it is paused
    And nobody is alerted about "email-reply-1bd"

  @edge @broken
  Scenario: Pausing after the deadline does not rescue a late email
    Given customer "C-1" emails contact-centre about case "K-9" on Mon 2024-03-04 09:00 Europe/London
    And contact-centre sets case "K-9" to "waiting_on_customer" on Tue 2024-03-05 09:30 Europe/London
    Then the "email-reply-1bd" promise is broken for "C-1"
    And it was decided on Mon 2024-03-04 17:00 Europe/London

  @edge
  Scenario: A case closed as spam cancels the promise
    Given customer "C-1" emails contact-centre about case "K-9" on Mon 2024-03-04 09:00 Europe/London
    When contact-centre closes case "K-9" as "spam" on Mon 2024-03-04 10:00 Europe/London
    Then the "email-reply-1bd" promise is cancelled for "C-1"
    And nobody is alerted about "email-reply-1bd"

  @edge @broken
  Scenario: Closing as spam after the deadline does not cancel a breach
    Given customer "C-1" emails contact-centre about case "K-9" on Mon 2024-03-04 09:00 Europe/London
    When contact-centre closes case "K-9" as "spam" on Tue 2024-03-05 10:00 Europe/London
    Then the "email-reply-1bd" promise is broken for "C-1"

  @edge
  Scenario: After 6 of the 8 hours the email is at risk, and Contact Centre is warned
    Given customer "C-1" emails contact-centre about case "K-9" on Mon 2024-03-04 09:00 Europe/London
    When the clock reaches Mon 2024-03-04 15:00 Europe/London
    Then the "email-reply-1bd" promise is at risk for "C-1"
    And the "contact-centre" team is alerted that "email-reply-1bd" is at risk for "C-1"

  @edge @kept
  Scenario: A reply that arrives late revises the breach, and a correction follows the alert
    The reply was sent in time, but the mail system delivered its record a day later,
    after the clock had already broken the promise.

    Given customer "C-1" emails contact-centre about case "K-9" on Mon 2024-03-04 09:00 Europe/London
    And the clock reaches Tue 2024-03-05 12:00 Europe/London
    And the "email-reply-1bd" promise is broken for "C-1"
    And the "contact-centre" team is alerted that "email-reply-1bd" is broken for "C-1"
    When a record arrives late: contact-centre replies on case "K-9" by email on Mon 2024-03-04 15:00 Europe/London
    Then the "email-reply-1bd" promise is kept for "C-1"
    And a correction is sent to the "contact-centre" team

  @edge @kept
  Scenario: A reply on another case does not answer this one
    Given customer "C-1" emails contact-centre about case "K-9" on Mon 2024-03-04 09:00 Europe/London
    And customer "C-1" emails contact-centre about case "K-10" on Mon 2024-03-04 09:05 Europe/London
    When contact-centre replies on case "K-10" by email on Mon 2024-03-04 09:30 Europe/London
    And the clock reaches Mon 2024-03-04 17:30 Europe/London
    Then the "email-reply-1bd" promise is kept for "K-10"
    And the "email-reply-1bd" promise is broken for "K-9"
